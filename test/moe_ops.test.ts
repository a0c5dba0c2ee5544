import * as mixt from '../lib';
import { TOL, expectClose, randn, rng, values } from './helpers';
import { checkGradient, dot, f64, i32 } from './gradcheck';

describe('top-k over rows (Mixture-of-Depths) and columns (expert choice)', () => {
  test('exactly k chosen per row, the largest, ties to the lower index, ascending', async () => {
    const R = 5, S = 37, k = 7;
    const r = rng(3);
    const s = Array.from({ length: R * S }, () => Math.round(r() * 10) / 10); // many ties
    const got = Array.from(await mixt.topkRows(mixt.tensor(new Float32Array(s), [R, S]), k).toArray());
    for (let row = 0; row < R; row++) {
      const ref = Array.from({ length: S }, (_, c) => c).sort((a, b) => s[row * S + b] - s[row * S + a] || a - b).slice(0, k).sort((a, b) => a - b);
      expect(got.slice(row * k, (row + 1) * k)).toEqual(ref);
    }
    const flat = Array.from(await mixt.topkRows(mixt.tensor(new Float32Array(s), [R, S]), k, { flat: true }).toArray());
    expect(flat).toEqual(got.map((c, i) => Math.floor(i / k) * S + c));
  });

  test('all-equal scores keep the first k (stable), k = 1 and k = S', async () => {
    expect(Array.from(await mixt.topkRows(mixt.full([1, 6], 2), 3).toArray())).toEqual([0, 1, 2]);
    expect(Array.from(await mixt.topkRows(mixt.tensor(new Float32Array([1, 5, 3]), [1, 3]), 1).toArray())).toEqual([1]);
    expect(Array.from(await mixt.topkRows(mixt.tensor(new Float32Array([1, 5, 3]), [1, 3]), 3).toArray())).toEqual([0, 1, 2]);
    expect(() => mixt.topkRows(mixt.zeros([2, 3]), 4)).toThrow(/argument "k"/);
  });

  test('columns: each expert picks its k highest-scoring tokens', async () => {
    const T = 11, E = 3, s = randn(T * E, 4);
    const got = Array.from(await mixt.topkColumns(mixt.tensor(s, [T, E]), 4).toArray());
    for (let e = 0; e < E; e++) {
      const ref = Array.from({ length: T }, (_, t) => t).sort((a, b) => s[b * E + e] - s[a * E + e] || a - b).slice(0, 4).sort((a, b) => a - b);
      expect(got.slice(e * 4, e * 4 + 4)).toEqual(ref);
    }
  });
});

describe('router gates', () => {
  for (const gate of ['softmax', 'sigmoid'] as const) {
    for (const renormalize of [false, true]) {
      test(`${gate}${renormalize ? ', renormalised' : ''}: top-k, gates, and the gradient (finite differences incl. z-loss)`, async () => {
        const T = 9, E = 6, k = 2;
        const logits = randn(T * E, 5, 2);
        const c = mixt.routerTopk(f64(logits, [T, E]), k, { gate, renormalize });
        const probs = await values(c.probs), ex = Array.from(await c.experts.toArray()), gates = await values(c.gates);
        for (let t = 0; t < T; t++) {
          const row = Array.from(logits.subarray(t * E, (t + 1) * E));
          const mx = Math.max(...row), s = row.reduce((a, v) => a + Math.exp(v - mx), 0);
          const p = row.map((v) => (gate === 'softmax' ? Math.exp(v - mx) / s : 1 / (1 + Math.exp(-v))));
          expectClose(probs.subarray(t * E, (t + 1) * E), p, TOL.f64, 'probs');
          const order = p.map((_, e) => e).sort((a, b) => p[b] - p[a] || a - b).slice(0, k);
          expect(ex.slice(t * k, t * k + k)).toEqual(order);
          const sum = order.reduce((a, e) => a + p[e], 0);
          expectClose(gates.subarray(t * k, t * k + k), order.map((e) => (renormalize ? p[e] / sum : p[e])), TOL.f64, 'gates');
        }
        // loss = sum(gates * rg) + sum(probs * rp) + z * sum(lse^2)
        const rg = randn(T * k, 6), rp = randn(T * E, 7), z = 0.3;
        const dl = mixt.routerBackward(f64(logits, [T, E]), c, { gate, renormalize, dgates: f64(rg, [T, k]), dprobs: f64(rp, [T, E]), z });
        const loss = async (l: Float64Array) => {
          const cc = mixt.routerTopk(f64(l, [T, E]), k, { gate, renormalize });
          // the chosen experts must not change under the probe (they are a discrete choice)
          const e2 = Array.from(await cc.experts.toArray());
          if (e2.join() !== ex.join()) return NaN;
          const lse = await values(cc.lse);
          return (await dot(cc.gates, rg)) + (await dot(cc.probs, rp)) + z * lse.reduce((a, v) => a + v * v, 0);
        };
        expect(await checkGradient(logits, await values(dl), loss, { probes: 20, eps: 1e-5, floor: 1e-4 })).toBeLessThan(1e-6);
      });
    }
  }
});

describe('row scaling and dispatch slots', () => {
  test('rowScale and rowDot', async () => {
    const x = randn(4 * 3, 8), w = randn(4, 9);
    const y = await values(mixt.rowScale(f64(x, [4, 3]), f64(w, [4])));
    expectClose(y, x.map((v, i) => v * w[Math.floor(i / 3)]), TOL.f64, 'rowScale');
    const d = await values(mixt.rowDot(f64(x, [4, 3]), f64(x, [4, 3])));
    expectClose(d, [0, 1, 2, 3].map((r) => x[3 * r] ** 2 + x[3 * r + 1] ** 2 + x[3 * r + 2] ** 2), TOL.f64, 'rowDot');
  });

  test('capacity in Switch/GShard priority: first choices in sequence order, then second choices; rows given by their sequence order', async () => {
    // token t's experts at 2t, 2t + 1; sequence order: the token of row 2, then row 0, then row 1
    expect(Array.from(await mixt.assignmentPriority(i32([2, 0, 1]), 3, 2).toArray())).toEqual([4, 0, 2, 5, 1, 3]);
    expect(Array.from(await mixt.assignmentPriority(null, 2, 2, { device: mixt.tensor([0]).device }).toArray())).toEqual([0, 2, 1, 3]);
    const experts = i32([1, 0, 0, 1, 0, 2]);
    const order = mixt.assignmentPriority(i32([2, 0, 1]), 3, 2);
    const plan = mixt.routingPlan(mixt.gatherRows(experts, order), 3);
    // expert 0: row 2's first choice, row 1's first choice; row 0's second choice is dropped
    expect(Array.from(await mixt.capacitySlots(plan.perm, plan.offsets, 2, { order }).toArray())).toEqual([4, 2, 0, 3, 5, -1]);
    expect(() => mixt.capacitySlots(plan.perm, plan.offsets, 2, { order: i32([0]) })).toThrow(/capacitySlots: argument "options.order"/);
    expect(() => mixt.assignmentPriority(null, 2, 2)).toThrow(/assignmentPriority/);
  });

  test('slot tokens (k = 2, a no-op expert) and capacity slots; -1 rows gather as zeros and scatter nowhere', async () => {
    const experts = i32([0, 3, 1, 1, 3, 0]); // token t's two experts at 2t, 2t + 1; expert 3 is the no-op
    const plan = mixt.routingPlan(experts, 4);
    expect(Array.from(await mixt.slotTokens(plan.perm, 2, { experts, noop: 3 }).toArray())).toEqual([0, 2, 1, 1, -1, -1]);
    expect(Array.from(await mixt.capacitySlots(plan.perm, plan.offsets, 1).toArray())).toEqual([0, 2, -1, 1]);
    const x = f64([1, 2, 3, 4, 5, 6], [3, 2]);
    expect(Array.from(await mixt.gatherRows(x, i32([2, -1, 0])).toArray())).toEqual([5, 6, 0, 0, 1, 2]);
    const s = mixt.scatterRows(f64([1, 1, 2, 2, 3, 3], [3, 2]), i32([-1, 1, 1]), 3, { accumulate: true });
    expect(Array.from(await s.toArray())).toEqual([0, 0, 5, 5, 0, 0]);
    await mixt.sync(); // -1 is not a fault
  });
});
