// A shared vocabulary over several modalities, as in Chameleon: each modality owns a contiguous
// range of token ids; special tokens belong to the text modality.

export interface ModalitySpec {
  name: string;
  range: [number, number]; // token ids [lo, hi)
}

export interface VocabSpec {
  size: number;
  modalities: ModalitySpec[];
  tokens?: string[]; // a printable name per id (optional)
}

export function modalityOfToken(vocab: VocabSpec): Uint8Array {
  const m = new Uint8Array(vocab.size);
  vocab.modalities.forEach((s, i) => {
    for (let t = s.range[0]; t < s.range[1]; t++) m[t] = i;
  });
  return m;
}

export function checkVocab(vocab: VocabSpec): void {
  if (!Number.isInteger(vocab.size) || vocab.size < 2) throw new RangeError(`vocab: size must be an integer >= 2, received ${vocab.size}`);
  if (!vocab.modalities.length || vocab.modalities.length > 8) throw new RangeError(`vocab: 1 to 8 modalities, received ${vocab.modalities.length}`);
  const seen = new Uint8Array(vocab.size);
  for (const m of vocab.modalities) {
    const [lo, hi] = m.range;
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && lo < hi && hi <= vocab.size)) {
      throw new RangeError(`vocab: modality ${m.name} range [${lo}, ${hi}) must lie inside [0, ${vocab.size})`);
    }
    for (let t = lo; t < hi; t++) {
      if (seen[t]) throw new RangeError(`vocab: token ${t} belongs to two modalities`);
      seen[t] = 1;
    }
  }
}
