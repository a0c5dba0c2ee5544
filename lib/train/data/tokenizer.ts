// Text tokenizers from the registry, behind one interface: a Hugging Face tokenizer.json (through
// @huggingface/tokenizers, pure JS), the tiktoken encodings shipped inside js-tiktoken, and a
// byte-level fallback that needs no file. A tokenizer is described by a JSON spec that travels in the
// token file's header and in the checkpoint's config, so it is rebuilt wherever the model is loaded.
import * as fs from 'fs';

export type TokenizerSpec =
  | { kind: 'bytes' }
  | { kind: 'tiktoken'; encoding: string }
  | { kind: 'hf'; json: unknown; source?: string };

export interface TextTokenizer {
  readonly spec: TokenizerSpec;
  readonly size: number; // ids are [0, size)
  encode(text: string): number[];
  decode(ids: number[]): string;
}

export const TIKTOKEN_ENCODINGS = ['cl100k_base', 'o200k_base', 'p50k_base', 'p50k_edit', 'r50k_base', 'gpt2'] as const;

class ByteTokenizer implements TextTokenizer {
  readonly spec: TokenizerSpec = { kind: 'bytes' };
  readonly size = 256;
  encode(text: string): number[] {
    return Array.from(Buffer.from(text, 'utf8'));
  }
  decode(ids: number[]): string {
    return Buffer.from(ids.filter((t) => t >= 0 && t < 256)).toString('utf8');
  }
}

interface TiktokenLike {
  encode(text: string, allowed?: string[] | 'all', disallowed?: string[] | 'all'): number[];
  decode(ids: number[]): string;
}

class TiktokenTokenizer implements TextTokenizer {
  readonly spec: TokenizerSpec;
  readonly size: number;
  readonly #enc: TiktokenLike;
  constructor(encoding: string) {
    if (!(TIKTOKEN_ENCODINGS as readonly string[]).includes(encoding)) {
      throw new RangeError(`tokenizer: unknown tiktoken encoding "${encoding}" (known: ${TIKTOKEN_ENCODINGS.join(', ')})`);
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Tiktoken } = require('js-tiktoken/lite');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(`js-tiktoken/ranks/${encoding}`);
    const ranks = mod.default ?? mod;
    this.#enc = new Tiktoken(ranks);
    this.spec = { kind: 'tiktoken', encoding };
    // the largest id: the last rank of the BPE table or a special token
    const specials = Object.values(ranks.special_tokens as Record<string, number>);
    this.size = Math.max(maxRank(ranks.bpe_ranks as string), ...specials) + 1;
  }
  encode(text: string): number[] {
    return this.#enc.encode(text, [], []); // special-token text is plain text here
  }
  decode(ids: number[]): string {
    return this.#enc.decode(ids.filter((t) => t >= 0 && t < this.size));
  }
}

// The largest rank of a js-tiktoken rank table (lines "<tag> <first rank> <token> <token> ...", as
// js-tiktoken parses them).
function maxRank(bpeRanks: string): number {
  let max = 0;
  for (const line of bpeRanks.split('\n')) {
    const parts = line.split(' ');
    const offset = Number.parseInt(parts[1], 10);
    if (parts.length > 2 && Number.isFinite(offset)) max = Math.max(max, offset + parts.length - 3);
  }
  return max;
}

interface HfTokenizerLike {
  encode(text: string, o?: { add_special_tokens?: boolean }): { ids: (number | undefined)[]; tokens: string[] };
  decode(ids: number[], o?: { skip_special_tokens?: boolean }): string;
  get_vocab(): Map<string, number> | Record<string, number>;
}

class HfTokenizer implements TextTokenizer {
  readonly spec: TokenizerSpec;
  readonly size: number;
  readonly #tok: HfTokenizerLike;
  readonly #what: string;
  constructor(json: unknown, source?: string) {
    this.#what = `tokenizer ${source ?? '(tokenizer.json)'}`;
    if (typeof json !== 'object' || json === null || typeof (json as { model?: unknown }).model !== 'object') {
      throw new RangeError(`${this.#what}: not a Hugging Face tokenizer.json (expected an object with a "model" field)`);
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Tokenizer } = require('@huggingface/tokenizers');
    try {
      // the library wants every pipeline field present; absent ones mean "none"
      const j = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...(json as object) };
      this.#tok = new Tokenizer(j, {});
    } catch (e) {
      throw new RangeError(`${this.#what}: not a usable tokenizer.json (${(e as Error).message})`);
    }
    const vocab = this.#tok.get_vocab();
    const ids = vocab instanceof Map ? [...vocab.values()] : Object.values(vocab);
    const added = ((json as { added_tokens?: { id: number }[] }).added_tokens ?? []).map((t) => t.id);
    let max = -1;
    for (const id of [...ids, ...added]) if (Number.isSafeInteger(id) && id > max) max = id;
    if (max < 0) throw new RangeError(`${this.#what}: the vocabulary is empty`);
    if (max >= 2 ** 31 - 16) throw new RangeError(`${this.#what}: ids up to ${max}, more than a token file holds`);
    this.size = max + 1;
    this.spec = { kind: 'hf', json, ...(source ? { source } : {}) };
  }
  encode(text: string): number[] {
    const enc = this.#tok.encode(text, { add_special_tokens: false });
    return enc.ids.map((id, i) => {
      if (id === undefined || !Number.isSafeInteger(id) || id < 0 || id >= this.size) {
        throw new RangeError(`${this.#what}: cannot encode "${enc.tokens[i]}" (no id, and the tokenizer has no unknown token)`);
      }
      return id;
    });
  }
  decode(ids: number[]): string {
    return this.#tok.decode(ids.filter((t) => t >= 0 && t < this.size), { skip_special_tokens: false });
  }
}

// From a CLI argument: "bytes", "tiktoken:<encoding>" (or the bare encoding name), or a path to a
// tokenizer.json.
export function tokenizerFromArgument(arg: string | undefined): TextTokenizer {
  if (!arg || arg === 'bytes') return new ByteTokenizer();
  const name = arg.startsWith('tiktoken:') ? arg.slice('tiktoken:'.length) : arg;
  if (arg.startsWith('tiktoken:') || ((TIKTOKEN_ENCODINGS as readonly string[]).includes(name) && !fs.existsSync(arg))) return new TiktokenTokenizer(name);
  let text: string;
  try {
    text = fs.readFileSync(arg, 'utf8');
  } catch (e) {
    throw new RangeError(`--tokenizer ${arg}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); expected a tokenizer.json, "bytes" or "tiktoken:<${TIKTOKEN_ENCODINGS.join('|')}>"`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RangeError(`--tokenizer ${arg}: not JSON (${(e as Error).message}); expected a Hugging Face tokenizer.json`);
  }
  return new HfTokenizer(json, arg);
}

export function tokenizerFromSpec(spec: TokenizerSpec): TextTokenizer {
  switch (spec?.kind) {
    case 'bytes': return new ByteTokenizer();
    case 'tiktoken': return new TiktokenTokenizer(spec.encoding);
    case 'hf': return new HfTokenizer(spec.json, spec.source);
    default: throw new RangeError(`tokenizer: unknown kind ${JSON.stringify((spec as { kind?: unknown })?.kind)} (expected 'bytes', 'tiktoken' or 'hf')`);
  }
}
