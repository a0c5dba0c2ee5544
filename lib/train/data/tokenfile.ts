// The binary token file (.mixt), little-endian:
//   0   8 bytes  magic "MIXTTOK\0"
//   8   u32      version (1)
//   12  u32      header length H
//   16  H bytes  JSON header: { vocab: VocabSpec, tokens: n, documents: d }
//   ... zero padding to a multiple of 8
//       i32[n]   token ids
//       u8[n]    modality ids (index into vocab.modalities)
//       ... zero padding to a multiple of 8
//       u64[d+1] document boundaries: document k is tokens [b[k], b[k+1]); b[0] = 0, b[d] = n
// Readers check the magic, version, sizes, ids against the vocabulary and the boundaries.
import * as fs from 'fs';
import { TokenDataset, fromDocuments } from './dataset';
import { VocabSpec, checkVocab, modalityOfToken } from './vocab';

const MAGIC = Buffer.from('MIXTTOK\0', 'latin1');
const VERSION = 1;

const pad8 = (n: number) => (n + 7) & ~7;

export function encodeTokenFile(ds: TokenDataset): Buffer {
  const n = ds.tokens.length, d = ds.docOffsets.length - 1;
  const header = Buffer.from(JSON.stringify({ vocab: ds.vocab, tokens: n, documents: d }), 'utf8');
  const tokOff = pad8(16 + header.length);
  const modOff = tokOff + 4 * n;
  const docOff = pad8(modOff + n);
  const buf = Buffer.alloc(docOff + 8 * (d + 1));
  MAGIC.copy(buf, 0);
  buf.writeUInt32LE(VERSION, 8);
  buf.writeUInt32LE(header.length, 12);
  header.copy(buf, 16);
  Buffer.from(ds.tokens.buffer, ds.tokens.byteOffset, 4 * n).copy(buf, tokOff);
  Buffer.from(ds.modality.buffer, ds.modality.byteOffset, n).copy(buf, modOff);
  for (let k = 0; k <= d; k++) buf.writeBigUInt64LE(BigInt(ds.docOffsets[k]), docOff + 8 * k);
  return buf;
}

export function decodeTokenFile(buf: Buffer, what = 'token file'): TokenDataset {
  const bad = (why: string): never => {
    throw new RangeError(`${what}: not a valid mixt token file: ${why}`);
  };
  if (buf.length < 16 || !buf.subarray(0, 8).equals(MAGIC)) bad('bad magic (expected "MIXTTOK")');
  const version = buf.readUInt32LE(8);
  if (version !== VERSION) bad(`version ${version}, this reader knows ${VERSION}`);
  const hlen = buf.readUInt32LE(12);
  if (16 + hlen > buf.length) bad('truncated header');
  let header: { vocab: VocabSpec; tokens: number; documents: number };
  try {
    header = JSON.parse(buf.subarray(16, 16 + hlen).toString('utf8'));
  } catch {
    return bad('the JSON header does not parse');
  }
  checkVocab(header.vocab);
  const n = header.tokens, d = header.documents;
  if (!Number.isSafeInteger(n) || n < 0 || !Number.isSafeInteger(d) || d < 0) bad('bad sizes in the header');
  const tokOff = pad8(16 + hlen), modOff = tokOff + 4 * n, docOff = pad8(modOff + n);
  if (buf.length !== docOff + 8 * (d + 1)) bad(`size ${buf.length} bytes, the header implies ${docOff + 8 * (d + 1)}`);
  const tokens = new Int32Array(n);
  Buffer.from(tokens.buffer).set(buf.subarray(tokOff, tokOff + 4 * n));
  const modality = Uint8Array.from(buf.subarray(modOff, modOff + n));
  const docOffsets = new Float64Array(d + 1);
  for (let k = 0; k <= d; k++) docOffsets[k] = Number(buf.readBigUInt64LE(docOff + 8 * k));
  const M = header.vocab.modalities.length;
  const modOf = modalityOfToken(header.vocab);
  for (let i = 0; i < n; i++) {
    if (tokens[i] < 0 || tokens[i] >= header.vocab.size) bad(`token ${i} is ${tokens[i]}, outside the vocabulary [0, ${header.vocab.size})`);
    if (modality[i] >= M) bad(`modality of token ${i} is ${modality[i]}, there are ${M} modalities`);
    if (modality[i] !== modOf[tokens[i]]) bad(`token ${i} (${tokens[i]}) is marked modality ${modality[i]} but its id lies in modality ${modOf[tokens[i]]}`);
  }
  if (docOffsets[0] !== 0 || docOffsets[d] !== n) bad('document boundaries must start at 0 and end at the token count');
  for (let k = 0; k < d; k++) if (docOffsets[k + 1] < docOffsets[k]) bad(`document boundary ${k + 1} decreases`);
  return { vocab: header.vocab, tokens, modality, docOffsets };
}

export function writeTokenFile(path: string, ds: TokenDataset): void {
  const tmp = `${path}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, encodeTokenFile(ds));
  fs.renameSync(tmp, path);
}

export function readTokenFile(path: string): TokenDataset {
  return decodeTokenFile(fs.readFileSync(path), path);
}

// JSONL -> dataset. Each line is one document, either
//   {"segments": [{"modality": "text", "tokens": [..]}, {"modality": "image", "tokens": [..]}]}  or
//   {"tokens": [..]}  (modalities follow from the vocabulary's token ranges).
export function packJsonl(text: string, vocab: VocabSpec, what = 'jsonl'): TokenDataset {
  checkVocab(vocab);
  const names = vocab.modalities.map((m) => m.name);
  const docs: number[][] = [];
  text.split('\n').forEach((line, li) => {
    if (!line.trim()) return;
    let doc: { tokens?: number[]; segments?: { modality: string; tokens: number[] }[] };
    try {
      doc = JSON.parse(line);
    } catch {
      throw new RangeError(`${what}:${li + 1}: not JSON`);
    }
    let toks: number[] = [];
    if (Array.isArray(doc.segments)) {
      for (const seg of doc.segments) {
        const m = names.indexOf(seg.modality);
        if (m < 0) throw new RangeError(`${what}:${li + 1}: unknown modality "${seg.modality}" (known: ${names.join(', ')})`);
        const [lo, hi] = vocab.modalities[m].range;
        for (const t of seg.tokens) {
          if (!Number.isInteger(t) || t < lo || t >= hi) throw new RangeError(`${what}:${li + 1}: token ${t} is outside modality ${seg.modality}'s range [${lo}, ${hi})`);
        }
        toks = toks.concat(seg.tokens);
      }
    } else if (Array.isArray(doc.tokens)) {
      for (const t of doc.tokens) if (!Number.isInteger(t) || t < 0 || t >= vocab.size) throw new RangeError(`${what}:${li + 1}: token ${t} is outside the vocabulary`);
      toks = doc.tokens;
    } else {
      throw new RangeError(`${what}:${li + 1}: expected "segments" or "tokens"`);
    }
    docs.push(toks);
  });
  return fromDocuments(vocab, docs);
}
