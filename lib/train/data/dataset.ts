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
  const modality = new Uint8Array(n);
  for (let i = 0; i < n; i++) modality[i] = modOf[tokens[i]]; // a plain loop: Uint8Array.from(iterable, fn) is several times slower
  return { vocab, tokens, modality, docOffsets: offsets };
}

// Pictures drawn from captions are what `mixt sample` shows: most documents are of that kind.
export const DOC_KINDS: [DocKind, number][] = [
  ['caption->image', 0.6],
  ['image->caption', 0.2],
  ['caption->melody', 0.1],
  ['melody->caption', 0.1],
];

export interface ShapesOptions {
  docs?: number;
  seed?: number;
  split?: 'train' | 'eval'; // eval: only held-out (shape, colour) pairs
  pictures?: Picture[]; // default: the split's pictures
  kinds?: [DocKind, number][]; // document kinds and their weights (default DOC_KINDS)
}

// The kind whose cumulative weight first exceeds u (uniform in [0, 1)).
export function drawKind(kinds: [DocKind, number][], u: number): DocKind {
  const total = kinds.reduce((a, [, w]) => a + w, 0);
  let left = u * total;
  for (const [k, w] of kinds) {
    if (left < w) return k;
    left -= w;
  }
  return kinds[kinds.length - 1][0];
}

// The embedded corpus: `docs` documents drawn with a seeded generator.
export function shapesCorpus(opts: ShapesOptions = {}): TokenDataset {
  const docsN = opts.docs ?? 20000;
  const split = opts.split ?? 'train';
  const rand = hostRandom((opts.seed ?? 1) * 7919 + (split === 'eval' ? 1 : 0));
  const pictures = opts.pictures ?? allPictures().filter((p) => isHeldOut(p) === (split === 'eval'));
  const docs: number[][] = [];
  // a picture and a kind make the same document every time: encoded once (the corpus is built on
  // the caller's thread; 500 documents took 15-30 ms, now a few)
  const encoded = new Map<string, number[]>();
  for (let i = 0; i < docsN; i++) {
    const pick = Math.floor(rand() * pictures.length);
    const kind = drawKind(opts.kinds ?? DOC_KINDS, rand());
    const key = `${pick} ${kind}`;
    let doc = encoded.get(key);
    if (!doc) encoded.set(key, (doc = encodeDocument(pictures[pick], kind)));
    docs.push(doc);
  }
  return fromDocuments(SHAPES_VOCAB, docs);
}

// Next-token targets counted by token, per modality (the first token of a document is no target).
function targetCounts(ds: TokenDataset): Map<number, number>[] {
  const counts = Array.from({ length: ds.vocab.modalities.length }, () => new Map<number, number>());
  for (let d = 0; d < ds.docOffsets.length - 1; d++) {
    for (let i = ds.docOffsets[d] + 1; i < ds.docOffsets[d + 1]; i++) {
      if (ds.patchIndex && (ds.patchIndex[i] >= 0 || ds.patchIndex[i - 1] >= 0)) continue; // patches have no token targets, nor predict one
      const m = counts[ds.modality[i]];
      m.set(ds.tokens[i], (m.get(ds.tokens[i]) ?? 0) + 1);
    }
  }
  return counts;
}

// The unigram baseline, per modality (nats; NaN for a modality without targets): the mean loss on
// `ds`'s targets of a model that ignores context and predicts each token by its frequency in
// `reference` (default: `ds` itself, giving its entropy). A token the reference never has gets half
// a count, so the baseline stays finite.
export function unigramEntropy(ds: TokenDataset, reference: TokenDataset = ds): number[] {
  const seen = targetCounts(ds), ref = reference === ds ? seen : targetCounts(reference);
  return seen.map((c, m) => {
    const total = [...c.values()].reduce((a, b) => a + b, 0);
    const refTotal = [...ref[m].values()].reduce((a, b) => a + b, 0);
    if (!total || !refTotal) return NaN;
    let h = 0;
    for (const [tok, n] of c) h -= (n / total) * Math.log((ref[m].get(tok) ?? 0.5) / refTotal);
    return h;
  });
}
