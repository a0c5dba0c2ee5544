// Element types. bf16 is stored as 16-bit words; reads return it widened to float32.

export type DType = 'f32' | 'f64' | 'bf16' | 'i32';
export const DTYPES: readonly DType[] = ['f32', 'f64', 'bf16', 'i32'];

export const dtypeCode: Record<DType, number> = { f32: 0, f64: 1, bf16: 2, i32: 3 };
export const dtypeBytes: Record<DType, number> = { f32: 4, f64: 8, bf16: 2, i32: 4 };

export function isFloat(d: DType): boolean {
  return d !== 'i32';
}

export type HostArray = Float32Array | Float64Array | Int32Array;

// The typed array a read of this dtype returns.
export function hostArrayOf(d: DType, buf: ArrayBuffer): HostArray {
  switch (d) {
    case 'f32':
      return new Float32Array(buf);
    case 'f64':
      return new Float64Array(buf);
    case 'i32':
      return new Int32Array(buf);
    case 'bf16': {
      const words = new Uint16Array(buf);
      const out = new Float32Array(words.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < words.length; i++) bits[i] = words[i] << 16;
      return out;
    }
  }
}

// float32 -> bf16 words, round to nearest even (the same rounding as both backends).
export function toBf16Words(src: ArrayLike<number>): Uint16Array {
  const f = Float32Array.from(src);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i];
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x007fffff) {
      out[i] = (x >>> 16) | 0x40;
      continue;
    }
    out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}
