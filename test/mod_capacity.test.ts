// Mixture-of-Depths capacity: which tokens go through the block. A float64 oracle written here (sort
// each (row, modality) group by score, take its quota) against chooseTokens and MoDBlock, on random
// scores and layouts.
import * as mixt from '../lib';
import { Device } from '../lib/core/device';
import { Batch } from '../lib/nn/batch';
import { MoDBlock, MOD_DEFAULTS } from '../lib/nn/mod';
import { ModCapacityBy, chooseTokens, modalityQuota } from '../lib/nn/mod_capacity';
import { MoTBlock } from '../lib/nn/mot_block';
import { randn, values } from './helpers';
import { f64 } from './gradcheck';

// A deterministic generator for layouts (randn gives the scores).
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

// Oracle: for each row, the chosen tokens of each group (the whole row, or each modality with its quota).
function oracle(scores: Float64Array, modality: Int32Array, M: number, S: number, k: number, by: ModCapacityBy): number[] {
  const chosen: number[] = [];
  for (let r = 0; r * S < scores.length; r++) {
    const row = Array.from({ length: S }, (_, i) => r * S + i);
    const groups = by === 'sequence' ? [row] : Array.from({ length: M }, (_, m) => row.filter((i) => modality[i] === m));
    const quota = by === 'sequence' ? [k] : modalityQuota(groups.map((g) => g.length), k);
    groups.forEach((g, m) => chosen.push(...[...g].sort((a, b) => scores[b] - scores[a] || a - b).slice(0, quota[m])));
  }
  return chosen.sort((a, b) => a - b);
}

describe('modalityQuota', () => {
  test('splits k in proportion to the counts (each within 1 of its exact share), sums to k, never above a count', () => {
    const rnd = lcg(3);
    for (let t = 0; t < 500; t++) {
      const M = 1 + Math.floor(rnd() * 5);
      const counts = Array.from({ length: M }, () => (rnd() < 0.2 ? 0 : Math.floor(rnd() * 40)));
      const n = counts.reduce((a, b) => a + b, 0);
      const k = Math.floor(rnd() * (n + 1));
      const q = modalityQuota(counts, k);
      expect(q.reduce((a, b) => a + b, 0)).toBe(n ? k : 0);
      q.forEach((v, m) => {
        expect(v).toBeLessThanOrEqual(counts[m]);
        expect(Math.abs(v - (n ? (k * counts[m]) / n : 0))).toBeLessThan(1);
      });
    }
    expect(modalityQuota([24, 200, 32], 32)).toEqual([3, 25, 4]);
  });
});

describe('chooseTokens', () => {
  for (const by of ['sequence', 'modality'] as const) {
    for (const dtype of ['f64', 'f32'] as const) {
      test(`${by}, ${dtype}: the oracle's tokens, ascending, k per row, and the mask marks them`, async () => {
        const rnd = lcg(by === 'sequence' ? 7 : 8);
        for (let trial = 0; trial < 12; trial++) {
          const M = 1 + Math.floor(rnd() * 4), S = 4 + Math.floor(rnd() * 60), R = 1 + Math.floor(rnd() * 4), T = R * S;
          const k = Math.max(1, Math.ceil((0.05 + rnd() * 0.6) * S));
          // runs of one modality, as documents interleave text, pictures and melodies
          const modality = new Int32Array(T);
          for (let i = 0, m = 0; i < T; i++) {
            if (rnd() < 0.15) m = Math.floor(rnd() * M);
            modality[i] = m;
          }
          const raw = randn(T, 100 + trial);
          // some equal scores: ties go to the earlier token
          for (let i = 0; i < T; i++) if (rnd() < 0.1) raw[i] = 0.5;
          const scores = dtype === 'f64' ? raw : raw.map(Math.fround);
          const t = mixt.tensor(scores, [T], { dtype });
          const { idx, mask } = chooseTokens(t, modality, M, S, k, by);
          const got = Array.from(await idx.toArray());
          const want = oracle(scores, modality, M, S, k, by);
          expect(got).toEqual(want);
          const m = Array.from(await mask.toArray());
          expect(m).toEqual(Array.from({ length: T }, (_, i) => (want.includes(i) ? 1 : 0)));
          for (const x of [t, idx, mask]) x.dispose();
        }
      });
    }
  }

  test('capacity by modality needs the host modality ids, each in range: a clear error otherwise', () => {
    const t = mixt.tensor(new Float64Array(8), [8], { dtype: 'f64' });
    expect(() => chooseTokens(t, null, 2, 8, 2, 'modality')).toThrow(/modality ids on the host/);
    expect(() => chooseTokens(t, Int32Array.from([0, 1, 0, 2, 0, 0, 0, 0]), 2, 8, 2, 'modality')).toThrow(/chooseTokens: modality id 2 of token 3 is outside \[0, 2\)/);
    t.dispose();
  });
});

describe('MoDBlock capacity by modality', () => {
  const S = 32, R = 2, T = R * S, d = 8;
  // a row: 4 text tokens, 24 picture tokens, 4 tone tokens
  const modality = Int32Array.from({ length: T }, (_, i) => (i % S < 4 ? 0 : i % S < 28 ? 1 : 2));
  const layout = { modality, docIds: Int32Array.from({ length: T }, (_, i) => Math.floor(i / S)), positions: Int32Array.from({ length: T }, (_, i) => i % S), rowLength: S };
  const init = (seed: number) => ({ generator: new mixt.Generator(seed), device: Device.cpu, masterDtype: 'f64' as const });
  const inner = () => new MoTBlock('inner', { dModel: d, heads: 2, kvHeads: 1, headDim: 4, ffnHidden: 12, modalities: 3, normKind: 'rms', placement: 'pre', qkNorm: false, ropeTheta: 10000, layers: 2 }, init(1), 'f64');

  // Pictures whose router scores are all below every text and tone token's (a router that has
  // learned a per-modality offset): a shared top-k never picks them; capacity by modality gives
  // them their share (k = 8 of 32: 1 text, 6 picture, 1 tone token per row).
  test('a modality whose scores are all lower still gets its share of the slots', async () => {
    for (const by of ['modality', 'sequence'] as const) {
      const mod = new MoDBlock('mod', inner(), d, { ...MOD_DEFAULTS, capacity: 0.25, capacityBy: by }, init(2), 'f64');
      const w = new Float64Array(d);
      w[0] = 1;
      mod.router.load(f64(w, [1, d]));
      const x = randn(T * d, 3);
      for (let i = 0; i < T; i++) x[i * d] = (modality[i] === 1 ? -10 : 10) + x[i * d];
      const b = new Batch(layout, 3, Device.cpu);
      mod.forward(b.toGrouped(f64(x, [T, d])), b).dispose();
      const st = mod.takeStats()!;
      const chosen = Array.from(await st.chosenByModality.toArray());
      expect(st.tokensByModality).toEqual([8, 48, 8]);
      expect(chosen).toEqual(by === 'modality' ? [2, 12, 2] : [8, 0, 8]);
      for (const t of [st.auxLoss, st.agreement, st.gateMean, st.chosenByModality]) t.dispose();
      mod.clearSaved();
      b.dispose();
    }
  });

});
