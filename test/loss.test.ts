import * as mixt from '../lib';
import { TOL, expectClose, quantize, randn, rng, values } from './helpers';
import { checkGradient, dot, f64, i32 } from './gradcheck';

function refCE(x: Float64Array, t: number[], R: number, V: number) {
  const loss = new Float64Array(R), lse = new Float64Array(R), correct: number[] = [];
  for (let r = 0; r < R; r++) {
    const row = Array.from(x.subarray(r * V, (r + 1) * V));
    const mx = Math.max(...row);
    const l = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
    lse[r] = l;
    loss[r] = t[r] < 0 ? 0 : l - row[t[r]];
    correct.push(t[r] >= 0 && row.indexOf(mx) === t[r] ? 1 : 0);
  }
  return { loss, lse, correct };
}

describe('cross-entropy rows and the chunked LM head', () => {
  for (const dtype of ['f64', 'f32', 'bf16'] as mixt.DType[]) {
    test(`rows: loss, lse, argmax (first max wins), ignored rows, ${dtype}`, async () => {
      const R = 29, V = 131;
      const x = quantize(randn(R * V, 1, 3), dtype);
      x[5 * V + 7] = x[5 * V + 9] = 50; // a tie on row 5: index 7 wins
      const r = rng(2);
      const t = Array.from({ length: R }, (_, i) => (i % 7 === 3 ? -1 : Math.floor(r() * V)));
      t[5] = 7;
      const out = mixt.crossEntropyRows(mixt.tensor(Array.from(x), [R, V], { dtype }), i32(t));
      const ref = refCE(x, t, R, V);
      const tol = dtype === 'f64' ? TOL.f64 : { rtol: 1e-5, atol: 1e-5 };
      expectClose(await values(out.loss), ref.loss, tol, 'loss');
      expectClose(await values(out.lse), ref.lse, tol, 'lse');
      expect(Array.from(await out.correct.toArray())).toEqual(ref.correct);
    });
  }

  test('the chunked head equals the unchunked reference, and its gradients pass finite differences', async () => {
    const N = 50, d = 6, V = 17;
    const h = randn(N * d, 3), w = randn(V * d, 4), r = randn(N, 5);
    const t = Array.from({ length: N }, (_, i) => (i % 9 === 0 ? -1 : (i * 7) % V));
    const run = (hh: Float64Array, ww: Float64Array) => mixt.lmHeadCrossEntropy(f64(hh, [N, d]), f64(ww, [V, d]), i32(t), { chunkRows: 7 });
    const logits = await values(mixt.matmul(f64(h, [N, d]), f64(w, [V, d]), { transB: true }));
    const ref = refCE(logits, t, N, V);
    const fw = run(h, w);
    expectClose(await values(fw.loss), ref.loss, TOL.f64, 'chunked loss');
    const g = mixt.lmHeadCrossEntropyBackward(f64(h, [N, d]), f64(w, [V, d]), i32(t), fw.lse, f64(r, [N]), { chunkRows: 7 });
    expect(await checkGradient(h, await values(g.dh), (x) => dot(run(x, w).loss, r))).toBeLessThan(1e-6);
    expect(await checkGradient(w, await values(g.dw), (x) => dot(run(h, x).loss, r))).toBeLessThan(1e-6);
    // accumulation into a given dw
    const acc = f64(await values(g.dw), [V, d]);
    mixt.lmHeadCrossEntropyBackward(f64(h, [N, d]), f64(w, [V, d]), i32(t), fw.lse, f64(r, [N]), { dw: acc });
    expectClose(await values(acc), (await values(g.dw)).map((v) => 2 * v), TOL.f64, 'dw accumulates');
  });

  test('targets outside the vocabulary are faults; groupSum sums per group with a mask', async () => {
    const out = mixt.crossEntropyRows(mixt.zeros([2, 4]), i32([1, 9]));
    await expect(out.loss.toArray()).rejects.toThrow(/target 9 of row 1 is outside the vocabulary \[0, 4\)/);
    const v = mixt.tensor(new Float32Array([1, 2, 3, 4, 5]));
    const { sums, counts } = mixt.groupSum(v, i32([0, 2, 0, 2, 1]), 3, { mask: i32([1, 1, 1, 0, 1]) });
    expect(Array.from(await sums.toArray())).toEqual([4, 5, 2]);
    expect(Array.from(await counts.toArray())).toEqual([2, 1, 1]);
    expect(() => mixt.groupSum(v, i32([0]), 3)).toThrow(/argument "groupIds" expected shape \[5\]/);
  });
});

describe('AdamW and clipping', () => {
  function refAdam(p: number[], g: number[][], o: { lr: number; b1: number; b2: number; eps: number; wd: number }, scale = 1) {
    const m = p.map(() => 0), v = p.map(() => 0), q = [...p];
    g.forEach((gs, s) => {
      const step = s + 1;
      for (let i = 0; i < q.length; i++) {
        const gi = gs[i] * scale;
        m[i] = o.b1 * m[i] + (1 - o.b1) * gi;
        v[i] = o.b2 * v[i] + (1 - o.b2) * gi * gi;
        const mh = m[i] / (1 - o.b1 ** step), vh = v[i] / (1 - o.b2 ** step);
        q[i] -= o.lr * (o.wd * q[i] + mh / (Math.sqrt(vh) + o.eps));
      }
    });
    return q;
  }

  test('three steps against the reference (bias correction, decoupled decay, grad scale, compute copy)', async () => {
    const n = 33, o = { lr: 0.01, b1: 0.9, b2: 0.95, eps: 1e-8, wd: 0.1 };
    const p0 = Array.from(randn(n, 1)), grads = [randn(n, 2), randn(n, 3), randn(n, 4)].map((a) => Array.from(a));
    for (const dtype of ['f64', 'f32'] as const) {
      const P = mixt.tensor(p0, [n], { dtype }), M = mixt.zeros([n], { dtype }), Vv = mixt.zeros([n], { dtype });
      const copy = mixt.zeros([n], { dtype: 'bf16' });
      const scale = mixt.full([1], 0.5);
      grads.forEach((g, s) => mixt.adamwStep(P, mixt.tensor(g, [n], { dtype }), M, Vv, { lr: o.lr, beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: o.wd, step: s + 1, gradScale: scale, computeCopy: copy }));
      const ref = refAdam(p0, grads, o, 0.5);
      expectClose(await values(P), ref, dtype === 'f64' ? TOL.f64 : { rtol: 1e-5, atol: 1e-6 }, `adamw ${dtype}`);
      expectClose(await values(copy), ref, TOL.bf16, 'bf16 copy');
    }
  });

  test('gradient norm over tensors of mixed sizes and dtypes; clip coefficient', async () => {
    const a = randn(1000, 5), b = randn(17, 6);
    const n2 = mixt.gradNormSquared([mixt.tensor(a), mixt.tensor(b, [17], { dtype: 'f32' })]);
    const ref = [...a, ...Float32Array.from(b)].reduce((s, v) => s + v * v, 0);
    expect(Math.abs((await n2.item()) - ref) / ref).toBeLessThan(1e-6);
    const c = mixt.clipCoefficient(n2, 1);
    expect(Math.abs((await c.item()) - 1 / (Math.sqrt(ref) + 1e-6))).toBeLessThan(1e-6);
    expect(await mixt.clipCoefficient(mixt.full([1], 0.25), 1).item()).toBe(1);
    expect(await mixt.clipCoefficient(mixt.full([1], Infinity as number), 1).item()).toBe(0);
    expect(() => mixt.gradNormSquared([])).toThrow(/non-empty array/);
    expect(() => mixt.adamwStep(mixt.zeros([2]), mixt.zeros([3]), mixt.zeros([2]), mixt.zeros([2]), { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 1 })).toThrow(/argument "grad" expected shape \[2\]/);
  });
});
