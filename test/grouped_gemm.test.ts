import * as mixt from '../lib';
import { TOL, expectClose, quantize, randn, values } from './helpers';
import { checkGradient, dot, f64, i32 } from './gradcheck';

// reference: y[r] = x[r] . w[g]^T over groups given by offsets
function refForward(x: Float64Array, w: Float64Array, offs: number[], K: number, O: number): Float64Array {
  const N = offs[offs.length - 1];
  const y = new Float64Array(N * O);
  for (let g = 0; g + 1 < offs.length; g++)
    for (let r = offs[g]; r < offs[g + 1]; r++)
      for (let o = 0; o < O; o++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += x[r * K + k] * w[(g * O + o) * K + k];
        y[r * O + o] = s;
      }
  return y;
}

function split(N: number, fractions: number[]): number[] {
  const offs = [0];
  let acc = 0;
  fractions.forEach((f, i) => {
    acc = i === fractions.length - 1 ? N : acc + Math.round(f * N);
    offs.push(acc);
  });
  return offs;
}

describe('grouped GEMM', () => {
  const cases: { name: string; N: number; K: number; O: number; offs: number[] }[] = [
    { name: 'MoT 60/30/10', N: 101, K: 24, O: 40, offs: split(101, [0.6, 0.3, 0.1]) },
    { name: 'an empty group', N: 37, K: 16, O: 9, offs: [0, 20, 20, 37] },
    { name: 'one group', N: 33, K: 17, O: 5, offs: [0, 33] },
    { name: 'MoE-like, 64 experts', N: 300, K: 8, O: 8, offs: Array.from({ length: 65 }, (_, i) => Math.round((300 * i * i) / 4096)) },
  ];
  for (const dtype of ['f64', 'f32', 'bf16'] as mixt.DType[]) {
    test(`forward, dX and dW against references, ${dtype}`, async () => {
      for (const c of cases) {
        const G = c.offs.length - 1;
        const x = quantize(randn(c.N * c.K, 1), dtype), w = quantize(randn(G * c.O * c.K, 2), dtype), dy = quantize(randn(c.N * c.O, 3), dtype);
        const X = mixt.tensor(Array.from(x), [c.N, c.K], { dtype }), W = mixt.tensor(Array.from(w), [G, c.O, c.K], { dtype });
        const DY = mixt.tensor(Array.from(dy), [c.N, c.O], { dtype });
        const off = i32(c.offs);
        const tol = dtype === 'f32' ? { rtol: 1e-5, atol: 1e-4 } : TOL[dtype];
        expectClose(await values(mixt.groupedMatmul(X, W, off)), refForward(x, w, c.offs, c.K, c.O), tol, `${c.name} forward`);
        // dX = dy . w[g]
        const dxRef = new Float64Array(c.N * c.K);
        for (let g = 0; g < G; g++) for (let r = c.offs[g]; r < c.offs[g + 1]; r++)
          for (let k = 0; k < c.K; k++) { let s = 0; for (let o = 0; o < c.O; o++) s += dy[r * c.O + o] * w[(g * c.O + o) * c.K + k]; dxRef[r * c.K + k] = s; }
        expectClose(await values(mixt.groupedMatmulDX(DY, W, off)), dxRef, tol, `${c.name} dX`);
        const dwRef = new Float64Array(G * c.O * c.K);
        for (let g = 0; g < G; g++) for (let r = c.offs[g]; r < c.offs[g + 1]; r++)
          for (let o = 0; o < c.O; o++) for (let k = 0; k < c.K; k++) dwRef[(g * c.O + o) * c.K + k] += dy[r * c.O + o] * x[r * c.K + k];
        expectClose(await values(mixt.groupedMatmulDW(DY, X, off)), dwRef, dtype === 'bf16' ? { rtol: 2e-2, atol: 5e-2 } : tol, `${c.name} dW`);
      }
    });
  }

  test('one group equals a plain matmul; beta accumulates', async () => {
    const x = randn(20 * 6, 5), w = randn(7 * 6, 6);
    const y1 = await values(mixt.groupedMatmul(f64(x, [20, 6]), f64(w, [1, 7, 6]), i32([0, 20])));
    const y2 = await values(mixt.matmul(f64(x, [20, 6]), f64(w, [7, 6]), { transB: true }));
    expectClose(y1, y2, TOL.f64, 'G=1');
    const acc = mixt.groupedMatmulDW(f64(randn(20 * 7, 1), [20, 7]), f64(x, [20, 6]), i32([0, 20]));
    const before = await values(acc);
    mixt.groupedMatmulDW(f64(randn(20 * 7, 1), [20, 7]), f64(x, [20, 6]), i32([0, 20]), { out: acc, beta: 1 });
    expectClose(await values(acc), before.map((v) => 2 * v), TOL.f64, 'beta=1');
  });

  test('dX and dW are the gradients of sum(y * r) (finite differences)', async () => {
    const N = 23, K = 6, O = 5, offs = [0, 9, 9, 23];
    const x = randn(N * K, 1), w = randn(3 * O * K, 2), r = randn(N * O, 3);
    const off = i32(offs);
    const loss = (xx: Float64Array, ww: Float64Array) => dot(mixt.groupedMatmul(f64(xx, [N, K]), f64(ww, [3, O, K]), off), r);
    const dx = await values(mixt.groupedMatmulDX(f64(r, [N, O]), f64(w, [3, O, K]), off));
    const dw = await values(mixt.groupedMatmulDW(f64(r, [N, O]), f64(x, [N, K]), off));
    expect(await checkGradient(x, dx, (xx) => loss(xx, w))).toBeLessThan(1e-7);
    expect(await checkGradient(w, dw, (ww) => loss(x, ww))).toBeLessThan(1e-7);
  });

  test('bad offsets are ERR_BAD_DATA at the next read; bad arguments name the argument', async () => {
    const y = mixt.groupedMatmul(mixt.ones([4, 2]), mixt.ones([2, 3, 2]), i32([0, 3, 2]));
    await expect(y.toArray()).rejects.toThrow(/groupedGemm: group offsets must rise from 0 to at most 4/);
    expect(() => mixt.groupedMatmul(mixt.ones([4, 2]), mixt.ones([2, 3, 5]), i32([0, 2, 4]))).toThrow(/argument "w" expected shape \[\*, \*, 2\]/);
    expect(() => mixt.groupedMatmul(mixt.ones([4, 2]), mixt.ones([2, 3, 2]), i32([0, 4]))).toThrow(/argument "offsets" expected shape \[3\]/);
    expect(() => mixt.groupedMatmulDW(mixt.ones([4, 2]), mixt.ones([4, 2]), i32([0, 4]), { beta: 1 })).toThrow(/options.beta/);
  });
});
