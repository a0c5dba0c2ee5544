// Test helpers: seeded host data, float64 references, tolerance checks, CUDA gating.
import * as mixt from '../lib';

// A small seeded PRNG for host-side test data (independent of mixt's Philox).
export { hostRandom as rng } from '../lib/core/random';
import { hostRandom as rng } from '../lib/core/random';

// n normal values (Box-Muller on the seeded PRNG).
export function randn(n: number, seed: number, scale = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - r(), v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

export function uniform(n: number, seed: number, lo = 0, hi = 1): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * r());
}

// Values as the given dtype would store them (so references start from the same inputs).
export function quantize(x: ArrayLike<number>, dtype: mixt.DType): Float64Array {
  if (dtype === 'f64') return Float64Array.from(x);
  if (dtype === 'f32') return Float64Array.from(Float32Array.from(x));
  if (dtype === 'bf16') {
    const f = Float32Array.from(x);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < u.length; i++) {
      const v = u[i];
      u[i] = (((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) << 16) >>> 0;
    }
    return Float64Array.from(f);
  }
  return Float64Array.from(x, (v) => Math.trunc(v));
}

export interface Tolerance {
  rtol: number;
  atol: number;
}

export const TOL: Record<mixt.DType, Tolerance> = {
  f64: { rtol: 1e-12, atol: 1e-12 },
  f32: { rtol: 1e-5, atol: 1e-5 },
  bf16: { rtol: 1e-2, atol: 1e-2 },
  i32: { rtol: 0, atol: 0 },
};

// Largest |a - e| / (atol + rtol * |e|) over all elements: <= 1 passes.
export function closeness(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): { worst: number; at: number } {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let worst = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (e === a) continue;
    const r = Math.abs(a - e) / (tol.atol + tol.rtol * Math.abs(e));
    if (!(r <= worst)) {
      worst = Number.isNaN(r) ? Infinity : r;
      at = i;
    }
  }
  return { worst, at };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what = ''): void {
  const { worst, at } = closeness(actual, expected, tol);
  if (worst > 1) {
    throw new Error(
      `${what}: element ${at} is ${actual[at]}, expected ${expected[at]} (rtol ${tol.rtol}, atol ${tol.atol}; ${worst.toFixed(2)}x over)`,
    );
  }
}

// Max relative error normalised by the reference's scale (for parity reports).
export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  return worst / (scale || 1);
}

export async function values(t: mixt.Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.toArray());
}

export const cudaUsable = mixt.cudaStatus().usable;
// A describe block for CUDA tests: skipped, with the reason in its title, where CUDA is unusable.
export const describeCuda: (name: string, fn: () => void) => void = cudaUsable
  ? describe
  : (name, fn) => describe.skip(`${name} [skipped: ${mixt.cudaStatus().reason}]`, fn);

// Float64 reference matmul: c[m,n] = a[m,k] b[k,n], row-major.
export function refMatmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
    }
  return c;
}

export function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}
