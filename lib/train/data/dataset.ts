// Token datasets in memory: token ids, a parallel array of modality ids, document boundaries, and
// (for the Transfusion setting) image span ids. The embedded shapes corpus builds one.
import { hostRandom } from '../../core/random';
import { DocKind, Picture, SHAPES_VOCAB, allPictures, encodeDocument, isHeldOut } from './shapes';
import { VocabSpec, modalityOfToken } from './vocab';

export interface TokenDataset {
  vocab: VocabSpec;
  tokens: Int32Array;
  modality: Uint8Array;
  docOffsets: Float64Array; // [docs + 1], starts at 0, ends at tokens.length
  // Transfusion: continuous image patches. patchIndex[i] is token i's row in `patches` (-1: a
  // discrete token); the tokens of one image form a contiguous run.
  patchIndex?: Int32Array;
  patches?: Float32Array;
  patchDim?: number;
  spans?: Float64Array; // image spans [start, end) as pairs of token positions (token files of user data)
}

export function documentCount(ds: TokenDataset): number {
  return ds.docOffsets.length - 1;
}


export function fromDocuments(vocab: VocabSpec, docs: number[][]): TokenDataset {
  const n = docs.reduce((a, d) => a + d.length, 0);
  const tokens = new Int32Array(n);
  const offsets = new Float64Array(docs.length + 1);
  let at = 0;
  docs.forEach((d, i) => {
    tokens.set(d, at);
    at += d.length;
    offsets[i + 1] = at;
  });
  const modOf = modalityOfToken(vocab);
  const modality = Uint8Array.from(tokens, (t) => modOf[t]);
  return { vocab, tokens, modality, docOffsets: offsets };
}

export const DOC_KINDS: [DocKind, number][] = [
  ['caption->image', 0.4],
  ['image->caption', 0.3],
  ['caption->melody', 0.15],
  ['melody->caption', 0.15],
];

export interface ShapesOptions {
  docs?: number;
  seed?: number;
  split?: 'train' | 'eval'; // eval: only held-out (shape, colour) pairs
}

// The embedded corpus: `docs` documents drawn with a seeded generator.
export function shapesCorpus(opts: ShapesOptions = {}): TokenDataset {
  const docsN = opts.docs ?? 20000;
  const split = opts.split ?? 'train';
  const rand = hostRandom((opts.seed ?? 1) * 7919 + (split === 'eval' ? 1 : 0));
  const pictures = allPictures().filter((p) => isHeldOut(p) === (split === 'eval'));
  const docs: number[][] = [];
  for (let i = 0; i < docsN; i++) {
    const p: Picture = pictures[Math.floor(rand() * pictures.length)];
    let u = rand(), kind: DocKind = DOC_KINDS[0][0];
    for (const [k, w] of DOC_KINDS) {
      if (u < w) {
        kind = k;
        break;
      }
      u -= w;
    }
    docs.push(encodeDocument(p, kind));
  }
  return fromDocuments(SHAPES_VOCAB, docs);
}

// Entropy (nats) of the unigram distribution of target tokens, per modality: the loss a model
// that ignores context would reach. Training should end well under it.
export function unigramEntropy(ds: TokenDataset): number[] {
  const M = ds.vocab.modalities.length;
  const counts = Array.from({ length: M }, () => new Map<number, number>());
  for (let d = 0; d < ds.docOffsets.length - 1; d++) {
    for (let i = ds.docOffsets[d] + 1; i < ds.docOffsets[d + 1]; i++) {
      const m = counts[ds.modality[i]];
      m.set(ds.tokens[i], (m.get(ds.tokens[i]) ?? 0) + 1);
    }
  }
  return counts.map((c) => {
    const total = [...c.values()].reduce((a, b) => a + b, 0);
    let h = 0;
    for (const v of c.values()) h -= (v / total) * Math.log(v / total);
    return h;
  });
}
