import * as mixt from '../lib';
import { Device } from '../lib/core/device';
import { Batch } from '../lib/nn/batch';
import { MoDBlock, ModConfig, MOD_DEFAULTS } from '../lib/nn/mod';
import { MoEFeedForward, MoeConfig, MOE_DEFAULTS } from '../lib/nn/moe';
import { MoTBlock } from '../lib/nn/mot_block';
import { flopsPerToken, presetConfig } from '../lib/model/config';
import { comparePlans } from '../lib/cli/compare';
import { Model } from '../lib/model/model';
import { shapesCorpus } from '../lib/train/data/dataset';
import { SHAPES_VOCAB } from '../lib/train/data/shapes';
import { TRAIN_DEFAULTS, Trainer } from '../lib/train/trainer';
import { TOL, expectClose, randn, values } from './helpers';
import { checkGradient, checkParameterGradients, dot, f64 } from './gradcheck';

const rows = 2, S = 16, T = rows * S, d = 8;
const modality = Int32Array.from({ length: T }, (_, i) => (i % 5 === 0 ? 1 : i % 7 === 0 ? 2 : 0));
const docIds = Int32Array.from({ length: T }, (_, i) => Math.floor(i / 8)); // two documents per row
const positions = Int32Array.from({ length: T }, (_, i) => i % 8);
const init = (seed: number) => ({ generator: new mixt.Generator(seed), device: Device.cpu, masterDtype: 'f64' as const });
const batchOf = () => new Batch({ modality, docIds, positions, rowLength: S }, 3, Device.cpu);
const innerBlock = (seed: number, ffn?: ConstructorParameters<typeof MoTBlock>[1]['ffn']) =>
  new MoTBlock('inner', { dModel: d, heads: 2, kvHeads: 1, headDim: 4, ffnHidden: 12, modalities: ffn ? 1 : 3, normKind: 'rms', placement: 'pre', qkNorm: false, ropeTheta: 10000, layers: 2, ffn }, init(seed), 'f64');
const modBlock = (cfg: Partial<ModConfig>, seed = 1) => new MoDBlock('mod', innerBlock(seed), d, { ...MOD_DEFAULTS, ...cfg }, init(seed + 10), 'f64');

async function runOriginal(block: { forward(x: mixt.Tensor, b: Batch): mixt.Tensor }, b: Batch, x: Float64Array) {
  return values(b.toOriginal(block.forward(b.toGrouped(f64(x, [T, d])), b)));
}

describe('Mixture-of-Depths', () => {
  test('capacity 1 with unit weights equals the plain block (no residual added twice, block on every token)', async () => {
    const x = randn(T * d, 1);
    const mod = modBlock({ capacity: 1, gate: 'one' }, 3);
    const plain = await runOriginal(mod.inner, batchOf(), x);
    mod.inner.clearSaved();
    const routed = await runOriginal(mod, batchOf(), x);
    expectClose(routed, plain, TOL.f64, 'MoD(C=1) == block');
  });

  test('exactly k tokens per sequence change, each by the router weight times the block update; the rest pass unchanged', async () => {
    const x = randn(T * d, 2);
    const mod = modBlock({ capacity: 0.25, gate: 'raw', capacityBy: 'sequence' }, 4);
    const b = batchOf();
    const y = await runOriginal(mod, b, x);
    const k = mod.chosenPerRow(S);
    expect(k).toBe(4);
    const logits = await values(mixt.matmul(f64(x, [T, d]), mod.router.value, { transB: true }));
    for (let r = 0; r < rows; r++) {
      const order = Array.from({ length: S }, (_, i) => r * S + i).sort((a, c) => logits[c] - logits[a] || a - c);
      const chosen = new Set(order.slice(0, k));
      for (let i = r * S; i < (r + 1) * S; i++) {
        const same = Array.from(y.subarray(i * d, (i + 1) * d)).every((v, c) => v === x[i * d + c]);
        expect(same).toBe(!chosen.has(i));
      }
    }
    // the update of a chosen token scales with its router weight: double the router, double r, same choice
    mod.clearSaved();
    const w = await values(mod.router.value);
    mod.router.load(f64(w.map((v) => 2 * v), [1, d]));
    const y2 = await runOriginal(mod, batchOf(), x);
    for (let i = 0; i < T; i++) for (let c = 0; c < d; c++) {
      const u1 = y[i * d + c] - x[i * d + c], u2 = y2[i * d + c] - x[i * d + c];
      expect(Math.abs(u2 - 2 * u1)).toBeLessThan(1e-9 + 1e-9 * Math.abs(u1));
    }
  });

  const gradVariants = [
    ...(['raw', 'sigmoid'] as const).flatMap((gate) => (['none', 'bce', 'predictor'] as const).map((aux) => ({ gate, aux, capacityBy: 'modality' as const }))),
    { gate: 'sigmoid' as const, aux: 'bce' as const, capacityBy: 'sequence' as const },
  ];
  for (const { gate, aux, capacityBy } of gradVariants) {
    test(`gradients reach the input, the block and the router (gate ${gate}, aux ${aux}, capacity by ${capacityBy})`, async () => {
      const mod = modBlock({ capacity: 0.3, gate, aux, auxWeight: 0.5, predictorHidden: 5, capacityBy }, 5);
      const x = randn(T * d, 6), r = randn(T * d, 7);
      const b = batchOf();
      const rg = await values(b.toGrouped(f64(r, [T, d])));
      const loss = async (xx: Float64Array) => {
        const v = await dot(mod.forward(b.toGrouped(f64(xx, [T, d])), b), rg);
        const aux = aux_ === 'none' ? 0 : await mod.lastStats!.auxLoss.item();
        mod.clearSaved();
        return v + mod.cfg.auxWeight * aux;
      };
      const aux_ = aux;
      mod.forward(b.toGrouped(f64(x, [T, d])), b);
      mod.zeroGrad();
      const dx = await values(b.toOriginal(mod.backward(f64(rg, [T, d]))));
      // the input gradient (the BCE of the predictor is stop-gradient w.r.t. x; the router's BCE is not)
      if (aux !== 'predictor') expect(await checkGradient(x, dx, loss, { probes: 10, eps: 1e-6, floor: 1e-5 })).toBeLessThan(1e-5);
      const routed = mod.parameters().filter((q) => q.kind === 'router' || q.name.includes('w_down'));
      await checkParameterGradients(routed, () => loss(x), { probes: 4, eps: 1e-5, floor: 1e-4 });
    });
  }

  test('generation is causal: a token\'s route and output do not depend on later tokens', async () => {
    const mod = modBlock({ capacity: 0.5, gate: 'sigmoid' }, 8);
    const x = randn(T * d, 9);
    const b = new Batch({ modality, docIds: new Int32Array(T), positions: Int32Array.from({ length: T }, (_, i) => i), rowLength: T }, 3, Device.cpu);
    const run = async (xx: Float64Array) => values(b.toOriginal(await mod.forwardCausal(b.toGrouped(f64(xx, [T, d])), b)));
    const y = await run(x);
    const x2 = x.slice();
    for (let c = 0; c < d; c++) x2[(T - 1) * d + c] += 3; // change the last token
    const y2 = await run(x2);
    expect(Array.from(y2.subarray(0, (T - 1) * d))).toEqual(Array.from(y.subarray(0, (T - 1) * d)));
  });
});

describe('Mixture-of-Experts FFN', () => {
  const variants: [string, Partial<MoeConfig>][] = [
    ['token choice, dropless, softmax renormalised', { experts: 4, k: 2 }],
    ['token choice, capacity 1.0', { experts: 4, k: 2, capacityFactor: 1 }],
    ['token choice, sigmoid gates', { experts: 3, k: 1, gate: 'sigmoid', renormalize: false }],
    ['expert choice', { experts: 4, k: 2, choice: 'expert', capacityFactor: 1 }],
    ['integrated MoDE: a no-op expert', { experts: 3, k: 2, noop: true }],
  ];
  for (const [name, cfg] of variants) {
    test(`${name}: loads, and gradients of input, experts and router (with balancing and z losses)`, async () => {
      const full = { ...MOE_DEFAULTS, hidden: 6, lbWeight: 0.3, zWeight: 0.2, ...cfg };
      const moe = new MoEFeedForward('moe', d, full, init(11), 'f64', 0.3);
      const b = batchOf();
      const x = randn(T * d, 12), r = randn(T * d, 13);
      const out = moe.forward(f64(x, [T, d]), b);
      const st = moe.takeStats()!;
      const load = Array.from(await st.load.toArray());
      if (full.choice === 'token') expect(load.reduce((a, c) => a + c, 0)).toBe(T * full.k); // every assignment counted once
      const loss = async (xx: Float64Array) => {
        const v = await dot(moe.forward(f64(xx, [T, d]), b), r);
        const s = moe.takeStats()!;
        const total = v + full.lbWeight * (await s.lbLoss.item()) + full.zWeight * (await s.zLoss.item());
        moe.clearSaved();
        return total;
      };
      expect(out.shape).toEqual([T, d]);
      moe.zeroGrad();
      moe.clearSaved();
      moe.forward(f64(x, [T, d]), b);
      const dx = await values(moe.backward(f64(r, [T, d])));
      expect(await checkGradient(x, dx, loss, { probes: 10, eps: 1e-6, floor: 1e-5 })).toBeLessThan(1e-5);
      await checkParameterGradients(moe.parameters(), () => loss(x), { probes: 5, eps: 1e-6, floor: 1e-5 });
    });
  }

  test('capacity: no expert processes more than its capacity; a token is never processed twice by one expert', async () => {
    const full = { ...MOE_DEFAULTS, experts: 4, k: 2, hidden: 6, capacityFactor: 0.5 };
    const moe = new MoEFeedForward('moe', d, full, init(14), 'f64', 0.3);
    moe.forward(f64(randn(T * d, 15), [T, d]), batchOf());
    const C = moe.capacity(T);
    expect(C).toBe(Math.ceil((0.5 * T * 2) / 4));
    // the dispatch the layer uses: each expert's slots hold at most C assignments, no assignment twice
    const e = mixt.routerTopk(f64(randn(T * 4, 16), [T, 4]), 2);
    const plan = mixt.routingPlan(e.experts.reshape([T * 2]), 4);
    const slots = Array.from(await mixt.capacitySlots(plan.perm, plan.offsets, C).toArray());
    const used = slots.filter((v) => v >= 0);
    expect(new Set(used).size).toBe(used.length);
    for (let x = 0; x < 4; x++) expect(slots.slice(x * C, (x + 1) * C).filter((v) => v >= 0).length).toBeLessThanOrEqual(C);
    const ex = Array.from(await e.experts.toArray());
    for (let t = 0; t < T; t++) expect(ex[2 * t]).not.toBe(ex[2 * t + 1]); // top-k without replacement
  });
});

describe('FLOPs of routed models', () => {
  const vocab = { size: SHAPES_VOCAB.size, modalities: SHAPES_VOCAB.modalities.map((m) => ({ name: m.name, range: m.range })) };
  test('a MoD layer costs its capacity\'s share of a block plus its router; compare\'s MoD model: a routed block between each two MoT blocks, the widest FFN within the MoT model\'s FLOPs', () => {
    const cfg = (blocks: ('mot' | 'mod')[], capacity = 0.125) => presetConfig('tiny', vocab, blocks, { layers: blocks.length, mod: { capacity } });
    const S = 256, mot1 = flopsPerToken(cfg(['mot']), S), mot2 = flopsPerToken(cfg(['mot', 'mot']), S);
    const layer = mot2 - mot1, d = 96;
    const mod = flopsPerToken(cfg(['mot', 'mod']), S) - mot1;
    // capacity 1: the whole block plus the router
    expect(flopsPerToken(cfg(['mot', 'mod'], 1), S) - mot1).toBeCloseTo(layer + 3 * 2 * d, 6);
    // capacity 1/8: an eighth of the projections and FFN, attention among the 32 chosen, the router on all
    const attn = (len: number) => 3 * 2 * 2 * len * 4 * 24 * 0.5; // causal, 4 heads of 24
    expect(mod).toBeCloseTo(0.125 * (layer - attn(S) + attn(32)) + 3 * 2 * d, 6);
    const plans = comparePlans('tiny', ['mot', 'mod'], S);
    const [motPlan, modPlan] = plans;
    // a routed block between each two of the MoT model's 3 blocks, every FFN as wide as its FLOPs allow
    expect(modPlan).toMatchObject({ pattern: 'mot,mod', layers: 5 });
    expect(modPlan.flops).toBeLessThanOrEqual(motPlan.flops);
    expect(modPlan.flops).toBeGreaterThan(0.97 * motPlan.flops);
    const mod5 = (ffnHidden: number) => flopsPerToken(presetConfig('tiny', vocab, ['mot', 'mod', 'mot', 'mod', 'mot'], { layers: 5, ffnHidden }), S);
    expect(mod5(modPlan.ffnHidden)).toBe(modPlan.flops);
    expect(mod5(modPlan.ffnHidden + 8)).toBeGreaterThan(motPlan.flops);
  });
});

describe('routed models train', () => {
  const vocab = { size: SHAPES_VOCAB.size, modalities: SHAPES_VOCAB.modalities.map((m) => ({ name: m.name, range: m.range })) };
  test('MoD does something: the chosen tokens\' gates leave 0 (default sigmoid gate); the raw router logit stays near 0', async () => {
    const data = shapesCorpus({ docs: 200, seed: 3 });
    const opts = { ...TRAIN_DEFAULTS, steps: 40, batch: 2, seqLen: 128, lr: 5e-3, minLr: 5e-4, warmup: 5 };
    const gates = async (gate?: 'raw') => {
      const cfg = presetConfig('tiny', vocab, ['mod', 'mod'], { dModel: 32, layers: 2, heads: 4, kvHeads: 2, ffnHidden: 48, ...(gate ? { mod: { gate } } : {}) });
      const tr = new Trainer(new Model(cfg, { device: Device.cpu, seed: 1 }), data, opts);
      while (tr.step < 40) await tr.trainStep();
      return tr.history.slice(-10).flatMap((h) => h.routing!.map((r) => r.meanGate!));
    };
    const sig = await gates(), raw = await gates('raw');
    expect(Math.min(...sig)).toBeGreaterThan(0.4);
    expect(Math.max(...raw.map(Math.abs))).toBeLessThan(0.1); // what the default avoids: updates scaled by ~0
  });

  test('MoD every other layer: the causal predictor\'s agreement with top-k rises; every routed kind lowers the loss', async () => {
    const data = shapesCorpus({ docs: 300, seed: 2 });
    const opts = { ...TRAIN_DEFAULTS, steps: 120, batch: 2, seqLen: 128, lr: 5e-3, minLr: 5e-4, warmup: 5 };
    const cfg = presetConfig('tiny', vocab, ['mot', 'mod'], { dModel: 32, layers: 2, heads: 4, kvHeads: 2, ffnHidden: 48, mod: { capacity: 0.25, auxWeight: 1 } });
    const tr = new Trainer(new Model(cfg, { device: Device.cpu, seed: 1 }), data, opts);
    while (tr.step < 120) await tr.trainStep();
    const acc = tr.history.map((h) => h.routing!.find((r) => r.kind === 'mod')!.predictorAccuracy!);
    const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    expect(avg(acc.slice(-30))).toBeGreaterThan(avg(acc.slice(0, 20)) + 0.03);
    // the report gives each modality's share of the routed block's tokens
    for (const h of tr.history.slice(-5)) {
      const r = h.routing!.find((x) => x.kind === 'mod')!;
      expect(r.chosenShare).toHaveLength(3);
      for (const v of r.chosenShare!) if (!Number.isNaN(v)) expect(v >= 0 && v <= 1).toBe(true);
    }
    const byModality = new Trainer(new Model({ ...cfg, mod: { ...cfg.mod, capacityBy: 'modality' } }, { device: Device.cpu, seed: 1 }), data, { ...opts, steps: 2 });
    await byModality.trainStep();
    // capacity by modality: pictures (64 or more tokens a row) get their quarter, up to one token of rounding per row
    expect(Math.abs(byModality.history[0].routing!.find((x) => x.kind === 'mod')!.chosenShare![1] - 0.25)).toBeLessThan(0.05);
    byModality.dispose();
    for (const kinds of [['moe'], ['mode-staged'], ['mode-integrated'], ['mot+moe']] as const) {
      const c = presetConfig('tiny', vocab, [...kinds, ...kinds], { dModel: 32, layers: 2, heads: 4, kvHeads: 2, ffnHidden: 48, moe: { experts: 4, k: 2, hidden: 32 } });
      const t2 = new Trainer(new Model(c, { device: Device.cpu, seed: 1 }), data, { ...opts, steps: 30 });
      while (t2.step < 30) await t2.trainStep();
      expect(t2.history[29].loss).toBeLessThan(0.7 * t2.history[0].loss);
    }
  });
});
