import * as mixt from '../lib';
import { TOL, expectClose, quantize, randn, uniform, values } from './helpers';

const DTYPES: mixt.DType[] = ['f64', 'f32', 'bf16'];

const refUnary: Record<mixt.UnaryName, (x: number) => number> = {
  neg: (x) => -x, exp: Math.exp, log: Math.log, sqrt: Math.sqrt, rsqrt: (x) => 1 / Math.sqrt(x), abs: Math.abs,
  relu: (x) => Math.max(0, x), silu: (x) => x / (1 + Math.exp(-x)),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), tanh: Math.tanh, sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  square: (x) => x * x, reciprocal: (x) => 1 / x, softplus: (x) => Math.log1p(Math.exp(x)), step: (x) => (x > 0 ? 1 : 0),
};

// Abramowitz-Stegun 7.1.26 is too coarse for 1e-12; use a series/continued fraction.
function erf(x: number): number {
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t, term = t;
    for (let n = 1; n < 200; n++) {
      term *= (-t * t) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (t + f);
  return Math.sign(x) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f));
}

describe('elementwise ops against float64 references', () => {
  const n = 1031; // not a multiple of any block size
  for (const dtype of DTYPES) {
    test(`binary ops, ${dtype}, with and without broadcast`, async () => {
      const av = quantize(randn(n * 3, 1), dtype);
      const bv = quantize(randn(n * 3, 2), dtype).map((v) => (Math.abs(v) < 0.1 ? 0.5 : v));
      const rowv = quantize(randn(n, 3), dtype).map((v) => (Math.abs(v) < 0.1 ? 0.5 : v));
      const a = mixt.tensor(Array.from(av), [3, n], { dtype });
      const b = mixt.tensor(Array.from(bv), [3, n], { dtype });
      const row = mixt.tensor(Array.from(rowv), [n], { dtype });
      const ops: [string, (x: mixt.Tensor, y: mixt.Tensor) => mixt.Tensor, (x: number, y: number) => number][] = [
        ['add', mixt.add, (x, y) => x + y], ['sub', mixt.sub, (x, y) => x - y], ['mul', mixt.mul, (x, y) => x * y],
        ['div', mixt.div, (x, y) => x / y], ['maximum', mixt.maximum, Math.max], ['minimum', mixt.minimum, Math.min],
      ];
      for (const [name, op, ref] of ops) {
        expectClose(await values(op(a, b)), av.map((x, i) => ref(x, bv[i])), TOL[dtype], `${name} ${dtype}`);
        expectClose(await values(op(a, row)), av.map((x, i) => ref(x, rowv[i % n])), TOL[dtype], `${name} broadcast ${dtype}`);
      }
    });

    test(`unary ops, ${dtype}`, async () => {
      const xv = quantize(randn(n, 4), dtype);
      const pos = quantize(uniform(n, 5, 0.1, 4), dtype);
      const x = mixt.tensor(Array.from(xv), [n], { dtype });
      const p = mixt.tensor(Array.from(pos), [n], { dtype });
      for (const op of mixt.UNARY_OPS) {
        const positive = op === 'log' || op === 'sqrt' || op === 'rsqrt' || op === 'reciprocal';
        const src = positive ? pos : xv;
        const got = await values(mixt.unary(op, positive ? p : x));
        // bf16 rounds the output too: one bf16 ulp is 2^-8 relative.
        expectClose(got, src.map(refUnary[op]), dtype === 'f32' ? { rtol: 2e-6, atol: 1e-6 } : TOL[dtype], `${op} ${dtype}`);
      }
    });

    test(`scale, axpby and cast, ${dtype}`, async () => {
      const xv = quantize(randn(n, 6), dtype), yv = quantize(randn(n, 7), dtype);
      const x = mixt.tensor(Array.from(xv), [n], { dtype }), y = mixt.tensor(Array.from(yv), [n], { dtype });
      expectClose(await values(mixt.scale(x, 1.5, -0.25)), xv.map((v) => 1.5 * v - 0.25), TOL[dtype], 'scale');
      expectClose(await values(mixt.axpby(0.5, x, -2, y)), xv.map((v, i) => 0.5 * v - 2 * yv[i]), TOL[dtype], 'axpby');
      const f32 = await values(mixt.cast(x, 'f32'));
      expectClose(f32, quantize(xv, 'f32'), TOL.f32, 'cast to f32');
      const bf = await values(mixt.cast(x, 'bf16'));
      expect(Array.from(bf)).toEqual(Array.from(quantize(xv, 'bf16')));
      const ints = await values(mixt.cast(mixt.scale(x, 10), 'i32'));
      expect(Array.from(ints)).toEqual(Array.from(await values(mixt.scale(x, 10))).map((v) => Math.trunc(v) + 0));
    });
  }

  test('bf16 rounds to nearest even, like the backends', async () => {
    // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
    const t = mixt.tensor(new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8)]));
    expect(Array.from(await mixt.cast(t, 'bf16').toArray())).toEqual([1, 1 + 2 ** -6, -1]);
  });

  test('errors name the argument, the expectation and what came', () => {
    const a = mixt.zeros([2, 3]);
    expect(() => mixt.add(a, mixt.zeros([2]))).toThrow(/add: argument "b" expected shape \[2, 3\] or a suffix of it, received shape \[2\]/);
    expect(() => mixt.add(a, mixt.zeros([3], { dtype: 'f64' }))).toThrow(/argument "b" expected dtype f32 \(as "a"\), received "f64"/);
    expect(() => mixt.add(a, 3 as unknown as mixt.Tensor)).toThrow(/argument "b" expected a Tensor, received 3/);
    expect(() => mixt.exp(mixt.zeros([2], { dtype: 'i32' }))).toThrow(/exp: argument "x" expected dtype f32 or f64 or bf16/);
    expect(() => mixt.scale(a, Infinity)).toThrow(RangeError);
    expect(() => mixt.add(a, a, mixt.zeros([3, 2]))).toThrow(/argument "out" expected shape \[2, 3\]/);
  });
});
