// JSONL documents of token ids against a given vocabulary: validation that names the line and the
// field, and a one-pass (linear) packer.
import { TokenDataset } from './dataset';
import { VocabSpec, checkVocab, modalityLookup } from './vocab';

// The token ids of one JSONL segment {"modality": name, "tokens": [...]}, checked against the
// modality's range; errors name the line and the field.
export function segmentTokens(seg: unknown, vocab: VocabSpec, where: string): number[] {
  if (typeof seg !== 'object' || seg === null || Array.isArray(seg)) throw new RangeError(`${where}: expected an object {"modality", "tokens"}, received ${JSON.stringify(seg)}`);
  const s = seg as { modality?: unknown; tokens?: unknown };
  const names = vocab.modalities.map((m) => m.name);
  const m = names.indexOf(s.modality as string);
  if (m < 0) throw new RangeError(`${where}: field "modality": unknown modality ${JSON.stringify(s.modality)} (known: ${names.join(', ')})`);
  if (!Array.isArray(s.tokens)) throw new RangeError(`${where}: field "tokens" must be an array of token ids, received ${JSON.stringify(s.tokens)?.slice(0, 40)}`);
  const [lo, hi] = vocab.modalities[m].range;
  for (const t of s.tokens) {
    if (!Number.isInteger(t) || t < lo || t >= hi) throw new RangeError(`${where}: field "tokens": ${JSON.stringify(t)} is outside modality ${names[m]}'s range [${lo}, ${hi})`);
  }
  return s.tokens as number[];
}

// The token ids of one JSONL document line of token ids: {"segments": [...]} or {"tokens": [...]}.
export function documentTokens(doc: unknown, vocab: VocabSpec, where: string): number[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new RangeError(`${where}: expected a JSON object with "segments" or "tokens"`);
  const d = doc as { segments?: unknown; tokens?: unknown };
  if (d.segments !== undefined) {
    if (!Array.isArray(d.segments)) throw new RangeError(`${where}: field "segments" must be an array`);
    const out: number[] = [];
    d.segments.forEach((seg, i) => {
      for (const t of segmentTokens(seg, vocab, `${where}: segments[${i}]`)) out.push(t);
    });
    return out;
  }
  if (Array.isArray(d.tokens)) {
    for (const t of d.tokens) if (!Number.isInteger(t) || t < 0 || t >= vocab.size) throw new RangeError(`${where}: field "tokens": ${JSON.stringify(t)} is outside the vocabulary [0, ${vocab.size})`);
    return d.tokens as number[];
  }
  throw new RangeError(`${where}: expected a field "segments" (array) or "tokens" (array of ids)`);
}

// JSONL of token ids -> dataset, in one pass (linear in the input). Each line is one document:
//   {"segments": [{"modality": "text", "tokens": [..]}, {"modality": "image", "tokens": [..]}]}  or
//   {"tokens": [..]}  (modalities follow from the vocabulary's token ranges).
export function packJsonl(text: string, vocab: VocabSpec, what = 'jsonl'): TokenDataset {
  checkVocab(vocab, `${what}: vocabulary`);
  const modOf = modalityLookup(vocab);
  let tokens = new Int32Array(1024), n = 0;
  const offsets: number[] = [0];
  let li = 0;
  for (let start = 0; start <= text.length; li++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (!line.trim()) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch (e) {
      throw new RangeError(`${what}:${li + 1}: not JSON (${(e as Error).message})`);
    }
    const toks = documentTokens(doc, vocab, `${what}:${li + 1}`);
    if (n + toks.length > tokens.length) {
      const grown = new Int32Array(Math.max(2 * tokens.length, n + toks.length));
      grown.set(tokens.subarray(0, n));
      tokens = grown;
    }
    for (let i = 0; i < toks.length; i++) {
      if (modOf(toks[i]) < 0) throw new RangeError(`${what}:${li + 1}: token ${toks[i]} lies in no modality of the vocabulary`);
      tokens[n++] = toks[i];
    }
    offsets.push(n);
  }
  const out = tokens.slice(0, n);
  return { vocab, tokens: out, modality: Uint8Array.from(out, modOf), docOffsets: Float64Array.from(offsets) };
}
