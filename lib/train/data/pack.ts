// `mixt data pack`: user inputs -> token files. Two streaming passes over the inputs:
//  1. decode every referenced image (in parallel, on worker threads) to the configured size and
//     learn the image codebook on the training images (discrete pictures);
//  2. tokenize every document (text through the tokenizer, pictures through the codec) and append it
//     to the training or the held-out file (a seeded hash of its source decides, or its input file).
// Documents stream through; only the small resized images are held. Every input that cannot be used
// is reported with its path and reason, never dropped silently, and never stops the run.
import * as path from 'path';
import { Codec } from './codec';
import { ImageCodecSpec, PatchReservoir, checkImageGeometry, learnCodebook, patchDim, toPatches } from './image_codec';
import { ImageInputError } from './image_decode';
import { ImagePool } from './image_pool';
import { RawDoc, RawSegment, SourceProblem, readInputs } from './sources';
import { tokenizerFromArgument } from './tokenizer';
import { documentTokens, segmentTokens } from './jsonl_tokens';
import { TokenFileWriter } from './tokenfile_writer';
import { VocabSpec, checkVocab } from './vocab';

export interface PackOptions {
  inputs: string[];
  out: string;
  evalOut?: string; // held-out documents go here
  heldOut?: number; // fraction of documents held out (by a seeded hash of their source)
  heldOutFrom?: string[]; // inputs whose documents are all held out
  tokenizer?: string; // 'bytes' (default), 'tiktoken:<encoding>', or a tokenizer.json
  vocab?: VocabSpec; // token-id documents against a given vocabulary (no tokenizer, no pictures)
  objective?: 'ar' | 'transfusion'; // pictures as codebook tokens, or as continuous patches
  imageSize?: number;
  patch?: number;
  codebook?: number;
  seed?: number;
  threads?: number;
  directions?: 'both' | 'caption-image' | 'image-caption';
  maxChars?: number; // plain text: documents are paragraphs, cut near this length
  onProgress?: (p: PackProgress) => void;
}

export interface PackProgress {
  phase: 'images' | 'documents';
  done: number;
  total: number;
  files: number; // images decoded and text inputs read so far
  documents: number;
  tokens: number;
  seconds: number;
}

export interface PackedFile {
  path: string;
  documents: number;
  tokens: number;
}

export interface PackResult {
  train: PackedFile;
  eval?: PackedFile;
  vocab: VocabSpec;
  images: { decoded: number; broken: number; threads: number; seconds: number };
  codebook?: string; // what the image codec is, in words
  skipped: SourceProblem[];
  seconds: number;
}

export const PACK_DEFAULTS = { imageSize: 16, patch: 2, codebook: 64, seed: 1, directions: 'both', maxChars: 2000 } as const;

// FNV-1a of the seed and a document's key, as a fraction in [0, 1): the held-out draw.
function splitDraw(seed: number, key: string): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return (h >>> 0) / 2 ** 32;
}

const imagesOf = (d: RawDoc) => d.segments.filter((s): s is { image: string } => 'image' in s).map((s) => s.image);

export async function packInputs(o: PackOptions): Promise<PackResult> {
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  const size = o.imageSize ?? PACK_DEFAULTS.imageSize, patch = o.patch ?? PACK_DEFAULTS.patch, K = o.codebook ?? PACK_DEFAULTS.codebook;
  const seed = o.seed ?? PACK_DEFAULTS.seed, maxChars = o.maxChars ?? PACK_DEFAULTS.maxChars;
  const objective = o.objective ?? 'ar';
  checkImageGeometry(size, patch, '--image-size/--patch');
  if (!Number.isSafeInteger(K) || K < 2 || K > 65536) throw new RangeError(`--codebook must be an integer in [2, 65536], received ${K}`);
  if (o.heldOut !== undefined && !(o.heldOut >= 0 && o.heldOut < 1)) throw new RangeError(`--held-out must be a fraction in [0, 1), received ${o.heldOut}`);
  if ((o.heldOut || o.heldOutFrom?.length) && !o.evalOut) throw new RangeError('--held-out/--held-out-from need --eval-out <file> for the held-out documents');
  if (o.vocab) checkVocab(o.vocab, '--vocab');
  const heldFrom = new Set((o.heldOutFrom ?? []).map((p) => path.resolve(p)));
  const isHeld = (d: RawDoc) => heldFrom.has(path.resolve(d.input)) || (!!o.heldOut && splitDraw(seed, d.key) < o.heldOut);
  const progress = { files: 0, documents: 0, tokens: 0 };
  const report = (phase: PackProgress['phase'], done: number, total: number) => o.onProgress?.({ phase, done, total, ...progress, seconds: seconds() });

  // Pass 1: decode every image once (in parallel, results in document order), count documents.
  const pixels = new Map<string, Uint8Array>(), broken = new Map<string, string>();
  const trainImages: string[] = [], trainSeen = new Set<string>();
  // the tokenizer first: an unusable tokenizer stops the run before any work
  const tokenizer = o.vocab ? null : tokenizerFromArgument(o.tokenizer);
  let docCount = 0;
  const t1 = performance.now();
  const pool = new ImagePool(size, o.threads); // closed in finally: live worker threads keep a process running
  try {
    const inFlight: Promise<void>[] = [];
    const window = Math.max(8, 4 * pool.threads);
    for await (const d of readInputs(o.inputs, [], maxChars)) {
      docCount++;
      const held = isHeld(d);
      for (const img of o.vocab ? [] : imagesOf(d)) { // token-id packing has no pictures
        if (!held && !trainSeen.has(img)) {
          trainSeen.add(img);
          trainImages.push(img);
        }
        if (pixels.has(img) || broken.has(img)) continue;
        pixels.set(img, new Uint8Array(0)); // claimed: decoded once
        inFlight.push(
          pool.decode(img).then(
            (rgb) => void pixels.set(img, rgb),
            (e) => {
              pixels.delete(img);
              broken.set(img, e instanceof ImageInputError ? e.reason : (e as Error).message);
            },
          ).finally(() => {
            progress.files++;
            report('images', progress.files, pixels.size + broken.size);
          }),
        );
        if (inFlight.length >= window) await Promise.all(inFlight.splice(0, inFlight.length - window / 2));
      }
    }
    await Promise.all(inFlight);
  } finally {
    await pool.close();
  }
  const imageSeconds = (performance.now() - t1) / 1000;

  // The codec: a tokenizer (or a given vocabulary of token ids), and an image codec if there are pictures.
  let codec: Codec | null = null;
  let codebookNote: string | undefined;
  if (!o.vocab) {
    let image: ImageCodecSpec | undefined;
    if (pixels.size || broken.size) {
      if (objective === 'transfusion') {
        image = { kind: 'continuous', size, patch };
        codebookNote = `continuous patches ${patch}x${patch}x3 of ${size}x${size} pictures (no codebook)`;
      } else {
        const res = new PatchReservoir(patchDim({ patch }), 20000, seed);
        for (const img of trainImages) if (pixels.get(img)?.length) res.add(toPatches(pixels.get(img)!, size, patch));
        if (!res.count) throw new RangeError(`no training picture could be decoded (${broken.size} broken: ${[...broken].slice(0, 3).map(([f, r]) => `${f}: ${r}`).join('; ')})`);
        image = learnCodebook(res, { size, patch, codebook: K, seed });
        codebookNote = `k-means codebook of ${K} patches (${patch}x${patch} RGB) learned on ${res.seen} patches of ${trainImages.length} training pictures (${res.count} sampled, seed ${seed})`;
      }
    }
    codec = new Codec(tokenizer!, image);
  }
  const vocab = o.vocab ?? codec!.vocab();
  const pd = codec?.image && !codec.image.discrete ? codec.image.patchDim : 0;

  // Pass 2: documents -> token files.
  const skipped: SourceProblem[] = [];
  const pics: Pictures = { pixels, broken, tokens: new Map() };
  const train = new TokenFileWriter(o.out, vocab, pd);
  const held = o.evalOut ? new TokenFileWriter(o.evalOut, vocab, pd) : null;
  let done = 0;
  try {
    for await (const d of readInputs(o.inputs, skipped, maxChars)) {
      done++;
      try {
        for (const doc of encodeDocument(d, vocab, codec, pics, o.directions ?? PACK_DEFAULTS.directions)) {
          (held && isHeld(d) ? held : train).add(doc.tokens, doc.spans, doc.patches);
          progress.documents++;
          progress.tokens += doc.tokens.length;
        }
      } catch (e) {
        skipped.push({ source: d.source, reason: (e as Error).message });
      }
      if (done % 256 === 0 || done === docCount) report('documents', done, docCount);
    }
    if (!train.documents) throw new RangeError(`no training documents were packed from ${o.inputs.join(', ')}${skipped.length ? ` (${skipped.length} inputs skipped; first: ${skipped[0].source}: ${skipped[0].reason})` : ''}`);
    train.finish();
    held?.finish();
  } catch (e) {
    train.abort();
    held?.abort();
    throw e;
  }
  const file = (w: TokenFileWriter): PackedFile => ({ path: w.path, documents: w.documents, tokens: w.tokens });
  return {
    train: file(train),
    ...(held ? { eval: file(held) } : {}),
    vocab,
    images: { decoded: [...pixels.values()].filter((p) => p.length).length, broken: broken.size, threads: pool.threads, seconds: imageSeconds },
    ...(codebookNote ? { codebook: codebookNote } : {}),
    skipped,
    seconds: seconds(),
  };
}

interface EncodedDoc {
  tokens: number[];
  spans: [number, number][];
  patches?: Float32Array;
}

// One raw document -> one or two encoded documents (a captioned image in both directions).
function encodeDocument(d: RawDoc, vocab: VocabSpec, codec: Codec | null, pics: Pictures, directions: string): EncodedDoc[] {
  const segs = d.segments;
  const cap = segs.length === 2 && 'caption' in segs[0] && 'image' in segs[1];
  if (cap) {
    const [c, i] = segs as [{ caption: string }, { image: string }];
    const c2i = [{ text: c.caption }, i], i2c = [i, { text: c.caption }];
    const orders = directions === 'caption-image' ? [c2i] : directions === 'image-caption' ? [i2c] : [c2i, i2c];
    return orders.map((s) => encodeSegments(s, vocab, codec, pics));
  }
  return [encodeSegments(segs, vocab, codec, pics)];
}

// The pictures of one run: decoded pixels, the reasons of broken ones, token ids once encoded.
interface Pictures {
  pixels: Map<string, Uint8Array>;
  broken: Map<string, string>;
  tokens: Map<string, number[]>;
}

function encodeSegments(segs: RawSegment[], vocab: VocabSpec, codec: Codec | null, pics: Pictures): EncodedDoc {
  if (!codec) {
    // token ids against a given vocabulary: exactly as written
    const toks: number[] = [];
    segs.forEach((s, i) => {
      if (!('tokens' in s)) throw new Error(`segments[${i}]: text and image segments need a tokenizer (pack without --vocab)`);
      const ids = s.modality === '*' ? documentTokens({ tokens: s.tokens }, vocab, `segments[${i}]`) : segmentTokens(s, vocab, `segments[${i}]`);
      for (const t of ids) toks.push(t);
    });
    return { tokens: toks, spans: [] };
  }
  const toks: number[] = [codec.bos], spans: [number, number][] = [], rows: Float32Array[] = [];
  segs.forEach((s, i) => {
    if ('text' in s) for (const t of codec.encodeText(s.text)) toks.push(t);
    else if ('caption' in s) for (const t of codec.encodeText(s.caption)) toks.push(t);
    else if ('image' in s) {
      const rgb = pics.pixels.get(s.image);
      if (!rgb?.length) throw new Error(`image ${s.image}: ${pics.broken.get(s.image) ?? 'not decoded'}`);
      toks.push(codec.boi);
      const start = toks.length;
      let ids = pics.tokens.get(s.image); // both directions of a captioned picture encode it once
      if (!ids) pics.tokens.set(s.image, (ids = codec.imageTokens(rgb)));
      for (const t of ids) toks.push(t);
      spans.push([start, toks.length]);
      if (!codec.image!.discrete) rows.push(codec.image!.latents(rgb));
      toks.push(codec.eoi);
    } else {
      const ids = s.modality === '*' ? documentTokens({ tokens: s.tokens }, vocab, `segments[${i}]`) : segmentTokens(s, vocab, `segments[${i}]`);
      for (const t of ids) toks.push(t);
    }
  });
  toks.push(codec.eos);
  const patches = rows.length ? new Float32Array(rows.reduce((a, r) => a + r.length, 0)) : undefined;
  let at = 0;
  for (const r of rows) (patches!.set(r, at), (at += r.length));
  return { tokens: toks, spans, ...(patches ? { patches } : {}) };
}
