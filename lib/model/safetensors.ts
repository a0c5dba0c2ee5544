// safetensors, written and read here: 8-byte little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}), then the
// raw little-endian data, tensors back to back in header order.
import { DType } from '../core/dtype';

const ST_DTYPE: Record<DType, string> = { f32: 'F32', f64: 'F64', bf16: 'BF16', i32: 'I32' };
const FROM_ST: Record<string, DType> = { F32: 'f32', F64: 'f64', BF16: 'bf16', I32: 'i32' };
const BYTES: Record<DType, number> = { f32: 4, f64: 8, bf16: 2, i32: 4 };

export interface StoredTensor {
  dtype: DType;
  shape: number[];
  data: Uint8Array; // raw little-endian bytes (bf16 as 16-bit words)
}

export function encodeSafetensors(tensors: Map<string, StoredTensor>, metadata: Record<string, string> = {}): Buffer {
  return Buffer.concat(safetensorsParts(tensors, metadata));
}

// The file as consecutive byte ranges (the header, then each tensor's bytes, not copied), for
// writers that stream it.
export function safetensorsParts(tensors: Map<string, StoredTensor>, metadata: Record<string, string> = {}): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let at = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype];
    if (n !== t.data.length) throw new RangeError(`safetensors: ${name} has ${t.data.length} bytes, its shape needs ${n}`);
    header[name] = { dtype: ST_DTYPE[t.dtype], shape: t.shape, data_offsets: [at, at + n] };
    at += n;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  // pad the header with spaces so the data starts 8-byte aligned
  const padded = (json.length + 7) & ~7;
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  return [head, ...[...tensors.values()].map((t) => t.data)];
}

export interface Safetensors {
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

// A view of the file's bytes where they are aligned for a typed array of their dtype (no copy: a
// checkpoint's hundreds of MiB are not copied on the JS thread; the tensors keep the file's buffer),
// else a copy.
function alignedBytes(b: Uint8Array, align: number): Uint8Array {
  return b.byteOffset % align === 0 ? b : new Uint8Array(b);
}

export function decodeSafetensors(buf: Buffer, what = 'safetensors'): Safetensors {
  const bad = (why: string): never => {
    throw new RangeError(`${what}: not a valid safetensors file: ${why}`);
  };
  if (buf.length < 8) bad('shorter than its 8-byte header length');
  const n = Number(buf.readBigUInt64LE(0));
  if (n > buf.length - 8 || n > 100 * 2 ** 20) bad(`header length ${n} does not fit the file`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch {
    return bad('the JSON header does not parse');
  }
  const base = 8 + n;
  const tensors = new Map<string, StoredTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const dtype = FROM_ST[e.dtype];
    if (!dtype) bad(`${name}: dtype ${e.dtype} is not supported (F32, F64, BF16, I32)`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`${name}: bad shape`);
    const [b, en] = e.data_offsets ?? [];
    const size = e.shape.reduce((a, c) => a * c, 1) * BYTES[dtype];
    if (!(Number.isSafeInteger(b) && Number.isSafeInteger(en) && b >= 0 && en - b === size && base + en <= buf.length)) {
      bad(`${name}: data offsets [${b}, ${en}] do not match its shape or the file size`);
    }
    tensors.set(name, { dtype, shape: e.shape, data: alignedBytes(buf.subarray(base + b, base + en), BYTES[dtype]) });
  }
  return { tensors, metadata };
}
