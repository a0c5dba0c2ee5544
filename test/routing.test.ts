import * as mixt from '../lib';
import { TOL, expectClose, randn, rng, values } from './helpers';
import { i32 } from './gradcheck';

function refPlan(ids: number[], G: number) {
  const counts = new Array(G).fill(0);
  ids.forEach((g) => counts[g]++);
  const offsets = [0];
  for (const c of counts) offsets.push(offsets[offsets.length - 1] + c);
  const perm = ids.map((g, i) => [g, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[1]);
  const inv = new Array(ids.length);
  perm.forEach((p, j) => (inv[p] = j));
  return { counts, offsets, perm, inv };
}

describe('routing plan, gather and scatter', () => {
  for (const [N, G] of [[1, 1], [1037, 3], [5000, 300], [64, 8]] as const) {
    test(`a stable plan for ${N} rows in ${G} groups (one group empty)`, async () => {
      const r = rng(N + G);
      const ids = Array.from({ length: N }, () => Math.floor(r() * G)).map((g) => (G > 1 && g === 1 ? 0 : g)); // group 1 empty
      const plan = mixt.routingPlan(i32(ids), G);
      const ref = refPlan(ids, G);
      expect(Array.from(await plan.counts.toArray())).toEqual(ref.counts);
      expect(Array.from(await plan.offsets.toArray())).toEqual(ref.offsets);
      expect(Array.from(await plan.perm.toArray())).toEqual(ref.perm);
      expect(Array.from(await plan.inv.toArray())).toEqual(ref.inv);
      plan.dispose();
    });
  }

  test('an id out of range is ERR_BAD_DATA at the next read, never a crash', async () => {
    const plan = mixt.routingPlan(i32([0, 1, 7, 1]), 2);
    await expect(plan.perm.toArray()).rejects.toThrow(/routingPlan: group id 7 of row 2 is outside \[0, 2\)/);
    expect((await plan.counts.toArray()).length).toBe(2);
  });

  for (const dtype of ['f64', 'f32', 'bf16'] as mixt.DType[]) {
    test(`gather then scatter round-trips through a permutation, ${dtype}`, async () => {
      const N = 77, d = 5;
      const x = mixt.tensor(Array.from(randn(N * d, 3)), [N, d], { dtype });
      const perm = Array.from({ length: N }, (_, i) => (i * 31) % N);
      const g = mixt.gatherRows(x, i32(perm));
      const xv = await values(x), gv = await values(g);
      for (let j = 0; j < N; j++) for (let c = 0; c < d; c++) expect(gv[j * d + c]).toBe(xv[perm[j] * d + c]);
      const back = mixt.scatterRows(g, i32(perm), N);
      expect(Array.from(await values(back))).toEqual(Array.from(xv));
    });
  }

  test('scatter accumulates duplicates (top-k routing, embedding backward)', async () => {
    const y = randn(6 * 3, 4), idx = [2, 0, 2, 2, 1, 0];
    const out = mixt.scatterRows(mixt.tensor(y, [6, 3]), i32(idx), 4, { accumulate: true });
    const ref = new Float64Array(12);
    idx.forEach((k, r) => { for (let c = 0; c < 3; c++) ref[k * 3 + c] += y[r * 3 + c]; });
    expectClose(await values(out), ref, TOL.f64, 'scatter-add');
    const gath = mixt.gatherRows(mixt.tensor(new Int32Array([5, 6, 7]), [3], { dtype: 'i32' }), i32([2, 2, 0]));
    expect(Array.from(await gath.toArray())).toEqual([7, 7, 5]);
  });

  test('bad indices are faults; bad arguments name the argument', async () => {
    const x = mixt.zeros([3, 2]);
    const g = mixt.gatherRows(x, i32([0, 3]));
    await expect(g.toArray()).rejects.toThrow(/gatherRows: index 3 at 1 is outside \[0, 3\)/);
    expect(() => mixt.gatherRows(x, mixt.zeros([2]))).toThrow(/argument "index" expected dtype i32/);
    expect(() => mixt.routingPlan(i32([0]), 0)).toThrow(/argument "groups"/);
    expect(() => mixt.scatterRows(x, i32([0]), 3)).toThrow(/argument "index" expected 3 entries/);
  });
});
