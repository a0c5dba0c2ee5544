// CUDA against the CPU backend for the layer ops, on the same random inputs. Skipped, visibly,
// where CUDA is unusable.
import * as mixt from '../../lib';
import { describeCuda, expectClose, maxRelError, randn, rng, values } from '../helpers';

const F32 = { rtol: 1e-5, atol: 1e-5 };
const BF16 = { rtol: 2e-2, atol: 2e-2 };
const tolFor = (dtype: mixt.DType, f32 = F32) => (dtype === 'bf16' ? BF16 : f32);
const ints = (a: number[], device: string) => mixt.tensor(Int32Array.from(a), [a.length], { dtype: 'i32', device });
const t = (a: Float64Array, shape: number[], device: string, dtype: mixt.DType) => mixt.tensor(Array.from(a), shape, { device, dtype: device === 'cpu' && dtype === 'bf16' ? 'f32' : dtype });
// CPU reference in f32 on bf16-rounded inputs when the CUDA side is bf16
const rounded = async (a: Float64Array, dtype: mixt.DType) => (dtype === 'bf16' ? Float64Array.from(await mixt.tensor(Array.from(a), [a.length], { dtype: 'bf16' }).toArray()) : a);

// Attention forward and backward on CUDA against the CPU, for each mask: out, lse, dq, dk, dv.
async function expectAttentionParity(x: Record<'q' | 'k' | 'v' | 'dO', Float64Array>, [Tn, Hq, Hk, D]: number[],
  masks: Record<string, (dev: string) => mixt.AttentionMask>, dtype: mixt.DType) {
  for (const [name, mask] of Object.entries(masks)) {
    const run = (dev: string) => {
      const Q = t(x.q, [Tn, Hq, D], dev, dtype), K = t(x.k, [Tn, Hk, D], dev, dtype), V = t(x.v, [Tn, Hk, D], dev, dtype);
      const f = mixt.attention(Q, K, V, mask(dev));
      const g = mixt.attentionBackward(Q, K, V, f.out, t(x.dO, [Tn, Hq, D], dev, dtype), f.lse, mask(dev));
      return [f.out, f.lse, g.dq, g.dk, g.dv];
    };
    const [c, g] = [run('cpu'), run('cuda')];
    for (let i = 0; i < 5; i++) {
      const err = maxRelError(await values(g[i]), await values(c[i]));
      if (err > (dtype === 'bf16' ? 2e-2 : 1e-4)) throw new Error(`attention ${name} T=${Tn} D=${D} Hq/Hk=${Hq}/${Hk} output ${i}: max relative error ${err}`);
    }
  }
}

describeCuda('CUDA layer ops against CPU', () => {
  test('routing plan is bit-identical; gather/scatter agree', async () => {
    for (const [N, G] of [[1, 1], [4099, 3], [70000, 300]]) {
      const r = rng(N);
      const ids = Array.from({ length: N }, () => Math.floor(r() * G));
      const a = mixt.routingPlan(ints(ids, 'cpu'), G), b = mixt.routingPlan(ints(ids, 'cuda'), G);
      for (const k of ['counts', 'offsets', 'perm', 'inv'] as const) expect(Array.from(await b[k].toArray())).toEqual(Array.from(await a[k].toArray()));
    }
    for (const dtype of ['f32', 'bf16'] as mixt.DType[]) {
      const x = await rounded(randn(500 * 7, 1), dtype), idx = Array.from({ length: 900 }, (_, i) => (i * 37) % 500);
      const run = (dev: string) => mixt.scatterRows(mixt.gatherRows(t(x, [500, 7], dev, dtype), ints(idx, dev)), ints(idx, dev), 500, { accumulate: true });
      expectClose(await values(run('cuda')), await values(run('cpu')), tolFor(dtype), `gather/scatter ${dtype}`);
    }
  });

  test('capacity dispatch in Switch/GShard priority is bit-identical', async () => {
    const N = 3001, K = 2, E = 7, r = rng(5);
    const experts = Array.from({ length: N * K }, () => Math.floor(r() * E));
    const rows = Array.from({ length: N }, (_, i) => i).sort(() => r() - 0.5);
    const run = async (dev: string) => {
      const order = mixt.assignmentPriority(ints(rows, dev), N, K);
      const plan = mixt.routingPlan(mixt.gatherRows(ints(experts, dev), order), E);
      return [Array.from(await order.toArray()), Array.from(await mixt.capacitySlots(plan.perm, plan.offsets, 500, { order }).toArray())];
    };
    expect(await run('cuda')).toEqual(await run('cpu'));
  });

  for (const dtype of ['f32', 'bf16'] as mixt.DType[]) {
    test(`norms and SwiGLU, ${dtype}`, async () => {
      const N = 777, d = 129, G = 3;
      const ids = Array.from({ length: N }, (_, i) => (i < 400 ? 0 : i < 777 ? 2 : 1));
      const x = await rounded(randn(N * d, 2), dtype), w = await rounded(randn(G * d, 3), dtype), b = await rounded(randn(G * d, 4), dtype), dy = await rounded(randn(N * d, 5), dtype);
      for (const kind of ['rms', 'layer'] as const) {
        const run = async (dev: string) => {
          const X = t(x, [N, d], dev, dtype), W = t(w, [G, d], dev, dtype), B = t(b, [G, d], dev, dtype), DY = t(dy, [N, d], dev, dtype);
          if (kind === 'rms') {
            const f = mixt.rmsNorm(X, W, ints(ids, dev));
            const g = mixt.rmsNormBackward(DY, X, W, ints(ids, dev), f.rstd);
            return [f.y, g.dx, g.dweight];
          }
          const f = mixt.layerNorm(X, W, B, ints(ids, dev));
          const g = mixt.layerNormBackward(DY, X, W, ints(ids, dev), f.mean, f.rstd);
          return [f.y, g.dx, g.dweight, g.dbias];
        };
        const [c, g] = [await run('cpu'), await run('cuda')];
        for (let i = 0; i < c.length; i++) expectClose(await values(g[i]), await values(c[i]), tolFor(dtype, { rtol: 1e-4, atol: 1e-4 }), `${kind} output ${i}`);
      }
      const gu = await rounded(randn(N * 64, 6), dtype), dh = await rounded(randn(N * 32, 7), dtype);
      const sw = async (dev: string) => [mixt.swiglu(t(gu, [N, 64], dev, dtype)), mixt.swigluBackward(t(dh, [N, 32], dev, dtype), t(gu, [N, 64], dev, dtype))];
      const [sc, sg] = [await sw('cpu'), await sw('cuda')];
      for (let i = 0; i < 2; i++) expectClose(await values(sg[i]), await values(sc[i]), tolFor(dtype, { rtol: 2e-5, atol: 2e-5 }), `swiglu ${i}`);
    });

    test(`grouped GEMM (tensor-core path and fallbacks), uneven groups, empty group, tails, ${dtype}`, async () => {
      for (const [N, K, O, offs] of [
        [1000, 256, 384, [0, 600, 900, 1000]], // aligned: tensor cores for bf16
        [333, 64, 72, [0, 200, 200, 333]], // empty group, tails
        [77, 30, 18, [0, 40, 77]], // K not a multiple of 8: SIMT fallback
        [2048, 128, 64, Array.from({ length: 65 }, (_, i) => Math.round((2048 * i * i) / 4096))], // 64 skewed experts
      ] as [number, number, number, number[]][]) {
        const G = offs.length - 1;
        const x = await rounded(randn(N * K, 8), dtype), w = await rounded(randn(G * O * K, 9), dtype), dy = await rounded(randn(N * O, 10), dtype);
        const run = (dev: string) => {
          const X = t(x, [N, K], dev, dtype), W = t(w, [G, O, K], dev, dtype), DY = t(dy, [N, O], dev, dtype), off = ints(offs, dev);
          return [mixt.groupedMatmul(X, W, off), mixt.groupedMatmulDX(DY, W, off), mixt.groupedMatmulDW(DY, X, off)];
        };
        const [c, g] = [run('cpu'), run('cuda')];
        for (let i = 0; i < 3; i++) {
          const ref = await values(c[i]);
          const got = await values(g[i]);
          const err = maxRelError(got, ref);
          expect(err).toBeLessThan(dtype === 'bf16' ? 1e-2 : 1e-5);
        }
      }
    });

    test(`attention forward and backward for every mask, GQA, head dims 64 and 128, ${dtype}`, async () => {
      for (const D of [64, 128]) {
        for (const Tn of [1, 37, 300, 1000]) {
          const Hq = 4, Hk = 2;
          const doc = Array.from({ length: Tn }, (_, i) => Math.floor((i * 3) / Tn));
          const span = Array.from({ length: Tn }, (_, i) => (i % 50 >= 10 && i % 50 < 30 ? Math.floor(i / 50) : -1));
          const pos = Array.from({ length: Tn }, (_, i) => 2 * i + 1);
          const masks: Record<string, (dev: string) => mixt.AttentionMask> = {
            causal: () => ({ causal: true }),
            docs: (dev) => ({ causal: true, docIds: ints(doc, dev) }),
            spans: (dev) => ({ causal: true, docIds: ints(doc, dev), spanIds: ints(span, dev) }),
            compacted: (dev) => ({ causal: true, docIds: ints(doc, dev), positions: ints(pos, dev) }),
          };
          const q = await rounded(randn(Tn * Hq * D, 11, 0.5), dtype), k = await rounded(randn(Tn * Hk * D, 12, 0.5), dtype);
          const v = await rounded(randn(Tn * Hk * D, 13), dtype), dO = await rounded(randn(Tn * Hq * D, 14), dtype);
          await expectAttentionParity({ q, k, v, dO }, [Tn, Hq, Hk, D], masks, dtype);
        }
      }
    });

    // The tensor-core kernels' other tile paths: GQA ratios 1 and 4, a bidirectional mask, one image
    // span over whole key tiles (classified full), many key tiles per query block.
    test(`attention GQA 1 and 4, bidirectional and long-span masks over many tiles, ${dtype}`, async () => {
      const Tn = 1500;
      const doc = Array.from({ length: Tn }, (_, i) => (i < 200 ? 0 : i < 1300 ? 1 : 2));
      const span = Array.from({ length: Tn }, (_, i) => (i >= 300 && i < 900 ? 7 : -1));
      const masks: Record<string, (dev: string) => mixt.AttentionMask> = {
        bidirectional: (dev) => ({ causal: false, docIds: ints(doc, dev) }),
        longSpan: (dev) => ({ causal: true, docIds: ints(doc, dev), spanIds: ints(span, dev) }),
      };
      for (const [D, Hq, Hk] of [[64, 2, 2], [128, 4, 1]]) {
        const q = await rounded(randn(Tn * Hq * D, 21, 0.5), dtype), k = await rounded(randn(Tn * Hk * D, 22, 0.5), dtype);
        const v = await rounded(randn(Tn * Hk * D, 23), dtype), dO = await rounded(randn(Tn * Hq * D, 24), dtype);
        await expectAttentionParity({ q, k, v, dO }, [Tn, Hq, Hk, D], masks, dtype);
      }
    });

    test(`rope, cross-entropy rows, AdamW, ${dtype}`, async () => {
      const x = await rounded(randn(100 * 4 * 64, 15), dtype), pos = Array.from({ length: 100 }, (_, i) => 40 * i);
      const rp = (dev: string) => mixt.rope(t(x, [100, 4, 64], dev, dtype), ints(pos, dev));
      expectClose(await values(rp('cuda')), await values(rp('cpu')), tolFor(dtype, { rtol: 1e-5, atol: 1e-5 }), 'rope');
      const R = 50, V = 5000;
      const logits = await rounded(randn(R * V, 16, 2), dtype), tg = Array.from({ length: R }, (_, i) => (i % 11 === 0 ? -1 : (i * 97) % V));
      const ce = (dev: string) => {
        const L = t(logits, [R, V], dev, dtype);
        const o = mixt.crossEntropyRows(L, ints(tg, dev));
        mixt.crossEntropyRowsBackward_(L, ints(tg, dev), o.lse, mixt.full([R], 0.5, { device: dev }));
        return [o.loss, o.lse, L];
      };
      const [c, g] = [ce('cpu'), ce('cuda')];
      for (let i = 0; i < 3; i++) expectClose(await values(g[i]), await values(c[i]), tolFor(dtype, { rtol: 1e-4, atol: 1e-5 }), `cross-entropy ${i}`);
      const n = 10000, p = randn(n, 17), gr = await rounded(randn(n, 18), dtype);
      const opt = async (dev: string) => {
        const P = mixt.tensor(Array.from(p), [n], { device: dev }), M = mixt.zeros([n], { device: dev }), Vv = mixt.zeros([n], { device: dev });
        const G = t(gr, [n], dev, dtype);
        const sq = mixt.gradNormSquared([G]);
        const c2 = mixt.clipCoefficient(sq, 1);
        for (let s = 1; s <= 3; s++) mixt.adamwStep(P, G, M, Vv, { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: s, gradScale: c2 });
        return [P, sq];
      };
      const [oc, og] = [await opt('cpu'), await opt('cuda')];
      expectClose(await values(og[0]), await values(oc[0]), { rtol: 1e-5, atol: 1e-6 }, 'adamw');
      expectClose(await values(og[1]), await values(oc[1]), { rtol: 1e-5, atol: 0 }, 'grad norm');
    });
  }
});
