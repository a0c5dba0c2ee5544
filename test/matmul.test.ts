import * as mixt from '../lib';
import { TOL, expectClose, quantize, randn, refMatmul, transpose, values } from './helpers';

describe('matmul against a float64 reference', () => {
  const shapes: [number, number, number][] = [[1, 1, 1], [7, 5, 3], [33, 65, 17], [70, 20, 300], [128, 96, 64], [5, 300, 2]];
  for (const dtype of ['f64', 'f32', 'bf16'] as mixt.DType[]) {
    test(`all transposes, ${dtype}`, async () => {
      let seed = 1;
      for (const [m, n, k] of shapes) {
        const av = quantize(randn(m * k, seed++), dtype), bv = quantize(randn(k * n, seed++), dtype);
        const ref = refMatmul(av, bv, m, n, k);
        // bf16 outputs round to 8 bits; the f32 sums of k terms stay well inside 1e-2.
        const tol = dtype === 'f32' ? { rtol: 1e-5, atol: 1e-5 * Math.sqrt(k) } : TOL[dtype];
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const a = mixt.tensor(Array.from(transA ? transpose(av, m, k) : av), transA ? [k, m] : [m, k], { dtype });
            const b = mixt.tensor(Array.from(transB ? transpose(bv, k, n) : bv), transB ? [n, k] : [k, n], { dtype });
            const c = mixt.matmul(a, b, { transA, transB });
            expect(c.shape).toEqual([m, n]);
            expectClose(await values(c), ref, tol, `${m}x${n}x${k} tA=${transA} tB=${transB} ${dtype}`);
          }
        }
      }
    });
  }

  test('batched with a shared right operand, alpha and beta', async () => {
    const [B, m, n, k] = [3, 9, 11, 13];
    const av = randn(B * m * k, 40), bv = randn(k * n, 41), cv = randn(B * m * n, 42);
    const a = mixt.tensor(av, [B, m, k]), b = mixt.tensor(bv, [k, n]);
    const out = mixt.tensor(cv, [B, m, n]);
    mixt.matmul(a, b, { alpha: 2, beta: -1, out });
    const got = await values(out);
    for (let bi = 0; bi < B; bi++) {
      const ref = refMatmul(av.subarray(bi * m * k, (bi + 1) * m * k), bv, m, n, k);
      const exp = ref.map((v, i) => 2 * v - cv[bi * m * n + i]);
      expectClose(got.subarray(bi * m * n, (bi + 1) * m * n), exp, TOL.f64, `batch ${bi}`);
    }
  });

  test('K = 0 gives zeros; errors name the mismatch', async () => {
    const c = mixt.matmul(mixt.zeros([3, 0]), mixt.zeros([0, 2]));
    expect(Array.from(await c.toArray())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(() => mixt.matmul(mixt.zeros([2, 3]), mixt.zeros([4, 5]))).toThrow(/matmul: argument "b" expected shape \[3, n\] to match a's inner size 3, received shape \[4, 5\]/);
    expect(() => mixt.matmul(mixt.zeros([2]), mixt.zeros([2, 2]))).toThrow(/argument "a" expected 2 or 3 dimensions/);
    expect(() => mixt.matmul(mixt.zeros([2, 2]), mixt.zeros([2, 2]), { beta: 1 })).toThrow(/options.beta/);
  });
});
