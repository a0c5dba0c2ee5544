// A shared vocabulary over several modalities, as in Chameleon: each modality owns a contiguous
// range of token ids; special tokens belong to the text modality. A vocabulary built from user data
// also carries its codec (the text tokenizer and the image codebook), so a model trained on it can be
// prompted with text and pictures wherever it is loaded.
import type { CodecSpec } from './codec';

export interface ModalitySpec {
  name: string;
  range: [number, number]; // token ids [lo, hi)
}

export interface VocabSpec {
  size: number;
  modalities: ModalitySpec[];
  tokens?: string[]; // a printable name per id (optional)
  codec?: CodecSpec;
}

// Token ids are stored as i32: a vocabulary can never be larger.
export const MAX_VOCAB = 2 ** 31 - 1;

// Modality of a token id by its range (at most 8 ranges: a scan, no table of vocab.size entries);
// -1 for an id in no modality's range.
export function modalityLookup(vocab: VocabSpec): (t: number) => number {
  const ranges = vocab.modalities.map((m) => m.range);
  return (t: number) => {
    for (let i = 0; i < ranges.length; i++) if (t >= ranges[i][0] && t < ranges[i][1]) return i;
    return -1;
  };
}

// A table of the modality of every id (ids in no range: 0): for the small vocabularies of training.
export function modalityOfToken(vocab: VocabSpec): Uint8Array {
  const m = new Uint8Array(vocab.size);
  vocab.modalities.forEach((s, i) => m.fill(i, s.range[0], s.range[1]));
  return m;
}

// Checks a vocabulary read from a file or JSON; `what` names where it came from. Costs O(modalities),
// whatever vocab.size claims.
export function checkVocab(vocab: unknown, what = 'vocab'): asserts vocab is VocabSpec {
  const bad = (field: string, expected: string, got: unknown): never => {
    throw new RangeError(`${what}: field "${field}" must be ${expected}, received ${JSON.stringify(got)?.slice(0, 80)}`);
  };
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) bad('vocab', 'an object {size, modalities}', vocab);
  const v = vocab as VocabSpec;
  if (!Number.isSafeInteger(v.size) || v.size < 2 || v.size > MAX_VOCAB) bad('size', `an integer in [2, ${MAX_VOCAB}]`, v.size);
  if (!Array.isArray(v.modalities) || v.modalities.length < 1 || v.modalities.length > 8) bad('modalities', 'an array of 1 to 8 modalities', v.modalities);
  v.modalities.forEach((m, i) => {
    if (typeof m !== 'object' || m === null) bad(`modalities[${i}]`, 'an object {name, range}', m);
    if (typeof m.name !== 'string' || !m.name) bad(`modalities[${i}].name`, 'a non-empty string', m.name);
    const r = m.range;
    if (!Array.isArray(r) || r.length !== 2 || !Number.isSafeInteger(r[0]) || !Number.isSafeInteger(r[1]) || r[0] < 0 || r[0] >= r[1] || r[1] > v.size) {
      bad(`modalities[${i}].range`, `[lo, hi) with 0 <= lo < hi <= ${v.size}`, r);
    }
  });
  const sorted = v.modalities.map((m) => m.range).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i][0] < sorted[i - 1][1]) throw new RangeError(`${what}: modality ranges [${sorted[i - 1]}) and [${sorted[i]}) overlap (token ${sorted[i][0]} belongs to two modalities)`);
  }
  if (v.tokens !== undefined && (!Array.isArray(v.tokens) || v.tokens.length > v.size)) bad('tokens', `an array of at most ${v.size} names`, typeof v.tokens);
}
