// `mixt/data`: token datasets for train(): open a token file, build one from JSONL or from
// in-memory documents, the embedded corpus, train/eval splits.
import * as fs from 'fs';
import { typeError } from '../core/errors';
import { TokenDataset, documentCount, fromDocuments, shapesCorpus, unigramEntropy } from '../train/data/dataset';
import { SHAPES_VOCAB, TOK, tokenizeCaption, tokenName } from '../train/data/shapes';

/** Special token ids of the embedded corpus: bos, eos, boi/eoi (a picture), bot/eot (a melody), pad. */
export const specialTokens: Readonly<typeof TOK> = Object.freeze({ ...TOK });
import { decodeTokenFile, encodeTokenFile, packJsonl, readTokenFile, writeTokenFile } from '../train/data/tokenfile';
import { transfusionCorpus } from '../train/data/transfusion';
import { VocabSpec, checkVocab } from '../train/data/vocab';

export type { TokenDataset, VocabSpec };
export { SHAPES_VOCAB, decodeTokenFile, documentCount, encodeTokenFile, packJsonl, readTokenFile, tokenName, tokenizeCaption, transfusionCorpus, unigramEntropy, writeTokenFile };

/** Opens a packed token file (.mixt); checks its header, ids and boundaries. */
export function openTokenFile(path: string): TokenDataset {
  if (typeof path !== 'string' || !path) throw typeError('openTokenFile', 'path', 'a file path', path);
  return readTokenFile(path);
}

/** Builds a dataset from JSONL text or a .jsonl file path (one document per line). */
export function fromJsonl(textOrPath: string, vocab: VocabSpec = SHAPES_VOCAB): TokenDataset {
  if (typeof textOrPath !== 'string') throw typeError('fromJsonl', 'textOrPath', 'JSONL text or a file path', textOrPath);
  const isPath = !textOrPath.includes('\n') && !textOrPath.trimStart().startsWith('{');
  return isPath ? packJsonl(fs.readFileSync(textOrPath, 'utf8'), vocab, textOrPath) : packJsonl(textOrPath, vocab);
}

/** Builds a dataset from documents held in memory (arrays of token ids). */
export function fromTokens(documents: ArrayLike<number>[], vocab: VocabSpec = SHAPES_VOCAB): TokenDataset {
  const fn = 'fromTokens';
  checkVocab(vocab);
  if (!Array.isArray(documents) || !documents.length) throw typeError(fn, 'documents', 'a non-empty array of token-id arrays', documents);
  const docs = documents.map((d, i) => {
    const a = Array.from(d);
    for (const t of a) if (!Number.isInteger(t) || t < 0 || t >= vocab.size) throw new RangeError(`${fn}: argument "documents[${i}]" expected token ids in [0, ${vocab.size}), received ${t}`);
    return a;
  });
  return fromDocuments(vocab, docs);
}

/** The embedded corpus: captions, 8x8 pictures and melodies. 'eval' holds out shape/colour pairs. */
export function embeddedCorpus(options: { split?: 'train' | 'eval'; docs?: number; seed?: number; objective?: 'ar' | 'transfusion' } = {}): TokenDataset {
  const split = options.split ?? 'train';
  const docs = options.docs ?? (split === 'train' ? 20000 : 2000);
  const seed = options.seed ?? (split === 'train' ? 1 : 2);
  return options.objective === 'transfusion' ? transfusionCorpus({ docs, seed, split }) : shapesCorpus({ docs, seed, split });
}

/** Splits a dataset by documents: the last `fraction` of them (at least one) are held out. */
export function splitDocuments(ds: TokenDataset, fraction = 0.1): { train: TokenDataset; eval: TokenDataset } {
  const n = documentCount(ds);
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`splitDocuments: argument "fraction" expected a number in (0, 1), received ${fraction}`);
  if (n < 2) throw new RangeError(`splitDocuments: argument "ds" expected at least 2 documents, received ${n}`);
  if (ds.patchIndex) throw new RangeError('splitDocuments: argument "ds" expected a token dataset (Transfusion corpora have their own split: embeddedCorpus({ split }))');
  const held = Math.max(1, Math.round(n * fraction)), cut = n - held;
  const part = (lo: number, hi: number) => {
    const docs: number[][] = [];
    for (let d = lo; d < hi; d++) docs.push(Array.from(ds.tokens.subarray(ds.docOffsets[d], ds.docOffsets[d + 1])));
    return fromDocuments(ds.vocab, docs);
  };
  return { train: part(0, cut), eval: part(cut, n) };
}
