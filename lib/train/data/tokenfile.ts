// The binary token file (.mixt), little-endian:
//   0   8 bytes  magic "MIXTTOK\0"
//   8   u32      version (1, or 2 with image spans / continuous patches)
//   12  u32      header length H
//   16  H bytes  JSON header: { vocab: VocabSpec, tokens: n, documents: d, spans?: s, patchDim?: p, patchRows?: r }
//   ... zero padding to a multiple of 8
//       i32[n]   token ids
//       u8[n]    modality ids (index into vocab.modalities)
//       ... zero padding to a multiple of 8
//       u64[d+1] document boundaries: document k is tokens [b[k], b[k+1]); b[0] = 0, b[d] = n
//   version 2 only:
//       u64[2s]  image spans [start, end) in token positions (pictures: attended bidirectionally
//                under the Transfusion objective)
//       f32[r*p] continuous patches (Transfusion): one row per token inside a span, in order
// Readers check the declared sizes against the file's length before allocating anything, then the
// ids against the vocabulary and the boundaries.
import * as fs from 'fs';
import { TokenDataset } from './dataset';
import { VocabSpec, checkVocab, modalityLookup } from './vocab';

const MAGIC = Buffer.from('MIXTTOK\0', 'latin1');
const MAX_HEADER = 1 << 30;

export const pad8 = (n: number) => (n + 7) & ~7;

export interface Header {
  vocab: VocabSpec;
  tokens: number;
  documents: number;
  spans?: number;
  patchDim?: number;
  patchRows?: number;
}

// Byte offsets of every section, from the header's declared sizes.
function layout(hlen: number, h: Header) {
  const n = h.tokens, d = h.documents, s = h.spans ?? 0, rows = h.patchRows ?? 0, pd = h.patchDim ?? 0;
  const tokOff = pad8(16 + hlen), modOff = tokOff + 4 * n, docOff = pad8(modOff + n);
  const spanOff = docOff + 8 * (d + 1), patchOff = spanOff + 16 * s;
  return { tokOff, modOff, docOff, spanOff, patchOff, total: patchOff + 4 * rows * pd };
}

const versionOf = (h: Header) => (h.spans || h.patchRows ? 2 : 1);

function headerOf(ds: TokenDataset): Header {
  const spans = ds.spans ? ds.spans.length / 2 : 0;
  const rows = ds.patches && ds.patchDim ? ds.patches.length / ds.patchDim : 0;
  return {
    vocab: ds.vocab, tokens: ds.tokens.length, documents: ds.docOffsets.length - 1,
    ...(spans ? { spans } : {}), ...(rows ? { patchDim: ds.patchDim, patchRows: rows } : {}),
  };
}

export function prefix(h: Header): Buffer {
  const json = Buffer.from(JSON.stringify(h), 'utf8');
  const out = Buffer.alloc(pad8(16 + json.length));
  MAGIC.copy(out, 0);
  out.writeUInt32LE(versionOf(h), 8);
  out.writeUInt32LE(json.length, 12);
  json.copy(out, 16);
  return out;
}

export const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
export const u64s = (a: ArrayLike<number>) => {
  const b = Buffer.alloc(8 * a.length);
  for (let i = 0; i < a.length; i++) b.writeBigUInt64LE(BigInt(a[i]), 8 * i);
  return b;
};

export function encodeTokenFile(ds: TokenDataset): Buffer {
  const h = headerOf(ds);
  const pre = prefix(h);
  const L = layout(pre.readUInt32LE(12), h);
  const buf = Buffer.alloc(L.total);
  pre.copy(buf, 0);
  bytesOf(ds.tokens).copy(buf, L.tokOff);
  bytesOf(ds.modality).copy(buf, L.modOff);
  u64s(ds.docOffsets).copy(buf, L.docOff);
  if (h.spans) u64s(ds.spans!).copy(buf, L.spanOff);
  if (h.patchRows) bytesOf(ds.patches!).copy(buf, L.patchOff);
  return buf;
}

// Parses and checks the fixed prefix and the JSON header; checks the sizes it declares against the
// file's length. Nothing proportional to the declared sizes is allocated here.
function readHeader(head: Buffer, fileLength: number, what: string): { h: Header; L: ReturnType<typeof layout> } {
  const bad = (why: string): never => {
    throw new RangeError(`${what}: not a valid mixt token file: ${why}`);
  };
  if (head.length < 16 || !head.subarray(0, 8).equals(MAGIC)) bad('bad magic (expected "MIXTTOK")');
  const version = head.readUInt32LE(8);
  if (version !== 1 && version !== 2) bad(`version ${version}, this reader knows 1 and 2`);
  const hlen = head.readUInt32LE(12);
  if (hlen > MAX_HEADER || 16 + hlen > fileLength) bad(`truncated header (it declares ${hlen} bytes, the file has ${fileLength})`);
  if (16 + hlen > head.length) bad('truncated header');
  let h: Header;
  try {
    h = JSON.parse(head.subarray(16, 16 + hlen).toString('utf8'));
  } catch {
    return bad('the JSON header does not parse');
  }
  if (typeof h !== 'object' || h === null) bad('the JSON header is not an object');
  const count = (field: keyof Header, v: unknown) => {
    if (v !== undefined && (!Number.isSafeInteger(v) || (v as number) < 0)) bad(`header field "${field}" must be a non-negative integer, received ${JSON.stringify(v)}`);
  };
  for (const f of ['tokens', 'documents', 'spans', 'patchDim', 'patchRows'] as const) count(f, h[f]);
  if (h.tokens === undefined || h.documents === undefined) bad('the header lacks "tokens" or "documents"');
  if (h.vocab === undefined) bad('the header lacks "vocab"');
  checkVocab(h.vocab, `${what}: header field "vocab"`);
  // sizes before anything is allocated: a header may claim anything
  const maxTokens = Math.floor(fileLength / 5);
  if (h.tokens > maxTokens) bad(`the header declares ${h.tokens} tokens, more than a file of ${fileLength} bytes can hold`);
  if (h.documents > fileLength / 8) bad(`the header declares ${h.documents} documents, more than a file of ${fileLength} bytes can hold`);
  if ((h.spans ?? 0) > fileLength / 16 || (h.patchRows ?? 0) * (h.patchDim ?? 0) > fileLength / 4) bad('the header declares more spans or patches than the file can hold');
  if (!!h.patchRows !== !!h.patchDim) bad('"patchRows" and "patchDim" go together');
  const L = layout(hlen, h);
  if (fileLength !== L.total) bad(`size ${fileLength} bytes, the header implies ${L.total}`);
  return { h, L };
}

function decodeSections(buf: Buffer, h: Header, L: ReturnType<typeof layout>, what: string): TokenDataset {
  const bad = (why: string): never => {
    throw new RangeError(`${what}: not a valid mixt token file: ${why}`);
  };
  const n = h.tokens, d = h.documents;
  const tokens = new Int32Array(n);
  bytesOf(tokens).set(buf.subarray(L.tokOff, L.tokOff + 4 * n));
  const modality = Uint8Array.from(buf.subarray(L.modOff, L.modOff + n));
  const docOffsets = new Float64Array(d + 1);
  for (let k = 0; k <= d; k++) docOffsets[k] = Number(buf.readBigUInt64LE(L.docOff + 8 * k));
  const M = h.vocab.modalities.length;
  const modOf = modalityLookup(h.vocab);
  for (let i = 0; i < n; i++) {
    if (tokens[i] < 0 || tokens[i] >= h.vocab.size) bad(`token ${i} is ${tokens[i]}, outside the vocabulary [0, ${h.vocab.size})`);
    if (modality[i] >= M) bad(`modality of token ${i} is ${modality[i]}, there are ${M} modalities`);
    const m = modOf(tokens[i]);
    if (modality[i] !== m) bad(m < 0 ? `token ${i} (${tokens[i]}) lies in no modality's range` : `token ${i} (${tokens[i]}) is marked modality ${modality[i]} but its id lies in modality ${m}`);
  }
  if (docOffsets[0] !== 0 || docOffsets[d] !== n) bad('document boundaries must start at 0 and end at the token count');
  for (let k = 0; k < d; k++) if (docOffsets[k + 1] < docOffsets[k]) bad(`document boundary ${k + 1} decreases`);
  const ds: TokenDataset = { vocab: h.vocab, tokens, modality, docOffsets };
  if (h.spans) {
    const spans = new Float64Array(2 * h.spans);
    let covered = 0, prevEnd = 0;
    for (let k = 0; k < 2 * h.spans; k++) spans[k] = Number(buf.readBigUInt64LE(L.spanOff + 8 * k));
    for (let k = 0; k < h.spans; k++) {
      const [a, b] = [spans[2 * k], spans[2 * k + 1]];
      if (!(a >= prevEnd && b > a && b <= n)) bad(`image span ${k} [${a}, ${b}) must be non-empty, ordered and inside [0, ${n})`);
      prevEnd = b;
      covered += b - a;
    }
    ds.spans = spans;
    if (h.patchRows) {
      if (covered !== h.patchRows) bad(`${h.patchRows} patch rows for ${covered} tokens inside image spans`);
      const patches = new Float32Array(h.patchRows * h.patchDim!);
      bytesOf(patches).set(buf.subarray(L.patchOff, L.patchOff + patches.byteLength));
      for (let i = 0; i < patches.length; i++) if (!Number.isFinite(patches[i])) bad(`patch value ${i} is ${patches[i]}`);
      const patchIndex = new Int32Array(n).fill(-1);
      let row = 0;
      for (let k = 0; k < h.spans; k++) for (let i = spans[2 * k]; i < spans[2 * k + 1]; i++) patchIndex[i] = row++;
      Object.assign(ds, { patches, patchDim: h.patchDim, patchIndex });
    }
  } else if (h.patchRows) bad('continuous patches without image spans');
  return ds;
}

export function decodeTokenFile(buf: Buffer, what = 'token file'): TokenDataset {
  const { h, L } = readHeader(buf, buf.length, what);
  return decodeSections(buf, h, L, what);
}

export function writeTokenFile(path: string, ds: TokenDataset): void {
  const tmp = `${path}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, encodeTokenFile(ds));
  fs.renameSync(tmp, path);
}

// Reads the header first and checks it against the file's size; only then reads the file.
export function readTokenFile(path: string): TokenDataset {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new RangeError(`${path}: cannot open the token file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const fixed = Buffer.alloc(Math.min(size, 16));
    fs.readSync(fd, fixed, 0, fixed.length, 0);
    const hlen = fixed.length === 16 && fixed.subarray(0, 8).equals(MAGIC) ? fixed.readUInt32LE(12) : 0;
    const head = Buffer.alloc(Math.min(size, 16 + Math.min(hlen, MAX_HEADER)));
    fs.readSync(fd, head, 0, head.length, 0);
    const { h, L } = readHeader(head, size, path);
    const buf = Buffer.alloc(size);
    fs.readSync(fd, buf, 0, size, 0);
    return decodeSections(buf, h, L, path);
  } finally {
    fs.closeSync(fd);
  }
}

export { packJsonl } from './jsonl_tokens';
