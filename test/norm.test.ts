import * as mixt from '../lib';
import { TOL, expectClose, quantize, randn, rng, values } from './helpers';
import { checkGradient, dot, f64, i32 } from './gradcheck';

function refNorm(kind: 'rms' | 'layer', x: Float64Array, w: Float64Array, b: Float64Array | null, ids: number[] | null, N: number, d: number, eps: number) {
  const y = new Float64Array(N * d);
  for (let r = 0; r < N; r++) {
    const g = ids ? ids[r] : 0;
    const row = x.subarray(r * d, (r + 1) * d);
    const mu = kind === 'layer' ? row.reduce((a, v) => a + v, 0) / d : 0;
    const ms = row.reduce((a, v) => a + (v - mu) ** 2, 0) / d;
    const rs = 1 / Math.sqrt(ms + eps);
    for (let c = 0; c < d; c++) y[r * d + c] = (row[c] - mu) * rs * w[g * d + c] + (b ? b[g * d + c] : 0);
  }
  return y;
}

describe('modality norms', () => {
  const N = 53, d = 19, G = 3;
  const ids = Array.from({ length: N }, (_, i) => (i < 30 ? 0 : i < 53 ? 2 : 1)); // group 1 empty
  for (const kind of ['rms', 'layer'] as const) {
    for (const dtype of ['f64', 'f32', 'bf16'] as mixt.DType[]) {
      test(`${kind} forward matches the reference, ${dtype}`, async () => {
        const x = quantize(randn(N * d, 1), dtype), w = quantize(randn(G * d, 2), dtype), b = quantize(randn(G * d, 3), dtype);
        const X = mixt.tensor(Array.from(x), [N, d], { dtype }), W = mixt.tensor(Array.from(w), [G, d], { dtype });
        const B = mixt.tensor(Array.from(b), [G, d], { dtype });
        const y = kind === 'rms' ? mixt.rmsNorm(X, W, i32(ids)).y : mixt.layerNorm(X, W, B, i32(ids)).y;
        const eps = kind === 'rms' ? 1e-6 : 1e-5;
        expectClose(await values(y), refNorm(kind, x, w, kind === 'layer' ? b : null, ids, N, d, eps), dtype === 'f32' ? { rtol: 1e-5, atol: 1e-5 } : TOL[dtype], kind);
      });
    }

    test(`${kind} gradients (dx, dweight${kind === 'layer' ? ', dbias' : ''}) pass a finite-difference check`, async () => {
      const x = randn(N * d, 4), w = randn(G * d, 5), b = randn(G * d, 6), r = randn(N * d, 7);
      const run = (xx: Float64Array, ww: Float64Array, bb: Float64Array) =>
        kind === 'rms' ? mixt.rmsNorm(f64(xx, [N, d]), f64(ww, [G, d]), i32(ids)) : mixt.layerNorm(f64(xx, [N, d]), f64(ww, [G, d]), f64(bb, [G, d]), i32(ids));
      const X = f64(x, [N, d]), W = f64(w, [G, d]);
      const fw = run(x, w, b);
      const dy = f64(r, [N, d]);
      const grads = kind === 'rms'
        ? mixt.rmsNormBackward(dy, X, W, i32(ids), fw.rstd)
        : mixt.layerNormBackward(dy, X, W, i32(ids), (fw as unknown as { mean: mixt.Tensor }).mean, fw.rstd);
      const loss = async (xx: Float64Array, ww: Float64Array, bb: Float64Array) => dot(run(xx, ww, bb).y, r);
      expect(await checkGradient(x, await values(grads.dx), (xx) => loss(xx, w, b))).toBeLessThan(1e-5);
      expect(await checkGradient(w, await values(grads.dweight), (ww) => loss(x, ww, b))).toBeLessThan(1e-5);
      const dw = await values(grads.dweight);
      for (let c = 0; c < d; c++) expect(dw[1 * d + c]).toBe(0); // the empty group gets no gradient
      if (kind === 'layer') {
        const db = (grads as unknown as { dbias: mixt.Tensor }).dbias;
        expect(await checkGradient(b, await values(db), (bb) => loss(x, w, bb))).toBeLessThan(1e-5);
      }
    });
  }

  test('errors: group ids required for several groups, ids out of range fault', async () => {
    const x = mixt.zeros([4, 3]), w = mixt.ones([2, 3]);
    expect(() => mixt.rmsNorm(x, w, null)).toThrow(/argument "groupIds" expected group ids \(weight has 2 groups\)/);
    expect(() => mixt.rmsNorm(x, mixt.ones([2, 4]), i32([0, 0, 0, 0]))).toThrow(/argument "weight" expected shape \[\*, 3\]/);
    const { y } = mixt.rmsNorm(mixt.ones([2, 3]), w, i32([0, 5]));
    await expect(y.toArray()).rejects.toThrow(/group id 5 of row 1/);
  });
});

describe('SwiGLU', () => {
  test('forward against the reference and gradient check', async () => {
    const N = 13, F = 7;
    const gu = randn(N * 2 * F, 8), r = randn(N * F, 9);
    const h = await values(mixt.swiglu(f64(gu, [N, 2 * F])));
    const ref = new Float64Array(N * F);
    for (let i = 0; i < N; i++) for (let c = 0; c < F; c++) {
      const g = gu[i * 2 * F + c], u = gu[i * 2 * F + F + c];
      ref[i * F + c] = (g / (1 + Math.exp(-g))) * u;
    }
    expectClose(h, ref, TOL.f64, 'swiglu');
    const d = mixt.swigluBackward(f64(r, [N, F]), f64(gu, [N, 2 * F]));
    expect(await checkGradient(gu, await values(d), (x) => dot(mixt.swiglu(f64(x, [N, 2 * F])), r), { probes: 20 })).toBeLessThan(1e-6);
    expect(() => mixt.swiglu(mixt.zeros([2, 3]))).toThrow(/even number of columns/);
  });
});

void rng;
