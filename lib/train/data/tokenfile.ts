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

const pad8 = (n: number) => (n + 7) & ~7;

interface Header {
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

function prefix(h: Header): Buffer {
  const json = Buffer.from(JSON.stringify(h), 'utf8');
  const out = Buffer.alloc(pad8(16 + json.length));
  MAGIC.copy(out, 0);
  out.writeUInt32LE(versionOf(h), 8);
  out.writeUInt32LE(json.length, 12);
  json.copy(out, 16);
  return out;
}

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const u64s = (a: ArrayLike<number>) => {
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

// Appends typed arrays to a temporary file through a buffer (the packer's output streams to disk).
class Spool {
  readonly #fd: number;
  readonly #buf = Buffer.alloc(1 << 20);
  #used = 0;
  bytes = 0;
  constructor(readonly file: string) {
    this.#fd = fs.openSync(file, 'w');
  }
  write(b: Buffer): void {
    if (this.#used + b.length > this.#buf.length) this.flush();
    if (b.length > this.#buf.length) fs.writeSync(this.#fd, b);
    else {
      b.copy(this.#buf, this.#used);
      this.#used += b.length;
    }
    this.bytes += b.length;
  }
  flush(): void {
    if (this.#used) fs.writeSync(this.#fd, this.#buf, 0, this.#used);
    this.#used = 0;
  }
  close(): void {
    this.flush();
    fs.closeSync(this.#fd);
  }
}

type Section = 'tokens' | 'modality' | 'docs' | 'spans' | 'patches';

// Writes a token file document by document without holding it in memory: sections go to temporary
// files, and finish() writes the header and concatenates them into place atomically.
export class TokenFileWriter {
  readonly #tmp: string;
  readonly #spools: Record<Section, Spool>;
  readonly #modOf: (t: number) => number;
  tokens = 0;
  documents = 0;
  spans = 0;
  patchRows = 0;

  constructor(readonly path: string, readonly vocab: VocabSpec, readonly patchDim = 0) {
    checkVocab(vocab);
    this.#tmp = `${path}.tmp-${process.pid}`;
    const s = (k: string) => new Spool(`${this.#tmp}.${k}`);
    this.#spools = { tokens: s('tokens'), modality: s('modality'), docs: s('docs'), spans: s('spans'), patches: s('patches') };
    this.#spools.docs.write(u64s([0]));
    this.#modOf = modalityLookup(vocab);
  }

  // One document: token ids, image spans relative to its start, and (continuous) one patch row per
  // span token, in order.
  add(tokens: number[], spans: [number, number][] = [], patches?: Float32Array): void {
    const mods = new Uint8Array(tokens.length);
    tokens.forEach((t, i) => {
      const m = this.#modOf(t);
      if (m < 0) throw new RangeError(`TokenFileWriter.add: token ${t} lies in no modality of the vocabulary`);
      mods[i] = m;
    });
    const sp = this.#spools;
    sp.tokens.write(bytesOf(Int32Array.from(tokens)));
    sp.modality.write(Buffer.from(mods.buffer));
    for (const [a, b] of spans) sp.spans.write(u64s([this.tokens + a, this.tokens + b]));
    if (patches?.length) {
      sp.patches.write(bytesOf(patches));
      this.patchRows += patches.length / this.patchDim;
    }
    this.spans += spans.length;
    this.tokens += tokens.length;
    this.documents++;
    sp.docs.write(u64s([this.tokens]));
  }

  finish(): void {
    for (const s of Object.values(this.#spools)) s.close();
    const h: Header = {
      vocab: this.vocab, tokens: this.tokens, documents: this.documents,
      ...(this.spans ? { spans: this.spans } : {}), ...(this.patchRows ? { patchDim: this.patchDim, patchRows: this.patchRows } : {}),
    };
    const pre = prefix(h);
    const fd = fs.openSync(this.#tmp, 'w');
    try {
      fs.writeSync(fd, pre);
      this.#append(fd, 'tokens');
      this.#append(fd, 'modality');
      fs.writeSync(fd, Buffer.alloc(pad8(pre.length + 5 * this.tokens) - (pre.length + 5 * this.tokens)));
      this.#append(fd, 'docs');
      this.#append(fd, 'spans');
      this.#append(fd, 'patches');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(this.#tmp, this.path);
  }

  abort(): void {
    for (const s of Object.values(this.#spools)) {
      try {
        s.close();
      } catch { /* already closed */ }
      fs.rmSync(s.file, { force: true });
    }
    fs.rmSync(this.#tmp, { force: true });
  }

  #append(fd: number, key: Section): void {
    const file = `${this.#tmp}.${key}`;
    const src = fs.openSync(file, 'r');
    const chunk = Buffer.alloc(4 << 20);
    try {
      for (let n; (n = fs.readSync(src, chunk, 0, chunk.length, null)) > 0;) fs.writeSync(fd, chunk, 0, n);
    } finally {
      fs.closeSync(src);
      fs.rmSync(file, { force: true });
    }
  }
}

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
