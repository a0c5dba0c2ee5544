// Gradient accumulation through the Trainer: --accum 2 at batch B gives the gradients of one step at
// batch 2B, the routers' auxiliary losses included (MoD BCE / predictor, MoE balance and z-loss).
import { Device } from '../lib/core/device';
import { presetConfig, ModelConfig } from '../lib/model/config';
import { Model } from '../lib/model/model';
import { shapesCorpus } from '../lib/train/data/dataset';
import { HostBatch, PackedLoader } from '../lib/train/data/loader';
import { SHAPES_VOCAB } from '../lib/train/data/shapes';
import { TRAIN_DEFAULTS, Trainer } from '../lib/train/trainer';

const vocab = { size: SHAPES_VOCAB.size, modalities: SHAPES_VOCAB.modalities.map((m) => ({ name: m.name, range: m.range })) };
const M = vocab.modalities.length;
const data = shapesCorpus({ docs: 200, seed: 5 });
const S = 64;

// Rows [r0, r1) of a batch, with their own target counts.
function rows(b: HostBatch, r0: number, r1: number): HostBatch {
  const cut = <T extends Int32Array>(a: T) => a.slice(r0 * b.seqLen, r1 * b.seqLen) as T;
  const out: HostBatch = {
    rows: r1 - r0, seqLen: b.seqLen, tokens: cut(b.tokens), modality: cut(b.modality), docIds: cut(b.docIds),
    positions: cut(b.positions), targets: cut(b.targets), targetModality: cut(b.targetModality), targetCounts: new Array(M).fill(0),
  };
  out.targets.forEach((t, i) => (t >= 0 ? out.targetCounts[out.targetModality[i]]++ : 0));
  return out;
}

// Two copies of a one-row batch as one two-row batch (document ids kept non-decreasing).
function twice(b: HostBatch): HostBatch {
  const cat = (a: Int32Array, shift = 0) => Int32Array.from([...a, ...a.map((v) => v + shift)]);
  return {
    rows: 2, seqLen: b.seqLen, tokens: cat(b.tokens), modality: cat(b.modality), docIds: cat(b.docIds, b.docIds[b.docIds.length - 1] + 1),
    positions: cat(b.positions), targets: cat(b.targets), targetModality: cat(b.targetModality), targetCounts: b.targetCounts.map((c) => 2 * c),
  };
}

// The gradients one trainStep applies, with the trainer's loader serving `batches`.
async function stepGradients(cfg: ModelConfig, batch: number, accum: number, batches: HostBatch[]): Promise<Map<string, Float64Array>> {
  const model = new Model(cfg, { device: Device.cpu, masterDtype: 'f64', seed: 11 });
  const tr = new Trainer(model, data, { ...TRAIN_DEFAULTS, steps: 1, batch, accum, seqLen: S, clipNorm: 0, warmup: 0 });
  let i = 0;
  tr.loader.next = () => batches[i++];
  const grads = new Map<string, Float64Array>();
  tr.optimizer.apply = async () => {}; // the update itself is not under test (AdamW's first step is sign(g))
  const reads: Promise<void>[] = [];
  const zero = model.zeroGrad.bind(model);
  model.zeroGrad = () => {
    for (const p of model.parameters()) {
      if (!p.grad) continue;
      const copy = p.grad.clone();
      reads.push(copy.toArray().then((v) => (grads.set(p.name, Float64Array.from(v)), copy.dispose())));
    }
    zero();
  };
  await tr.trainStep();
  await Promise.all(reads);
  model.dispose();
  return grads;
}

function expectSameGradients(a: Map<string, Float64Array>, b: Map<string, Float64Array>): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let aux = 0;
  for (const [name, ga] of a) {
    const gb = b.get(name)!;
    let scale = 0, diff = 0;
    for (let i = 0; i < ga.length; i++) {
      scale = Math.max(scale, Math.abs(ga[i]));
      diff = Math.max(diff, Math.abs(ga[i] - gb[i]));
    }
    if (/router/.test(name)) aux += scale;
    expect({ name, equal: diff <= 1e-9 * Math.max(scale, 1e-12) }).toEqual({ name, equal: true });
  }
  expect(aux).toBeGreaterThan(0); // the routers did receive gradients
}

const base = { dModel: 16, layers: 2, heads: 2, kvHeads: 1, ffnHidden: 24 };

describe('gradient accumulation', () => {
  test('mod: --accum 2 at batch 1 equals one step at batch 2 (the auxiliary BCE and predictor included)', async () => {
    for (const aux of ['bce', 'predictor'] as const) {
      const cfg = presetConfig('tiny', vocab, ['mod', 'mot'], { ...base, mod: { capacity: 0.5, aux, auxWeight: 1 } });
      const two = new PackedLoader(data, S, 2, 3).next(); // two different rows
      const big = await stepGradients(cfg, 2, 1, [two]);
      const acc = await stepGradients(cfg, 1, 2, [rows(two, 0, 1), rows(two, 1, 2)]);
      expectSameGradients(big, acc);
    }
  });

  test('moe: --accum 2 at batch 1 equals one step at batch 2 (balance and z-loss included)', async () => {
    // The balance loss multiplies batch means (it is not a sum over tokens), so the two micro-batches
    // are the same rows: then the step at batch 2 and the two accumulated halves are the same function.
    const cfg = presetConfig('tiny', vocab, ['moe', 'mot'], { ...base, moe: { experts: 4, k: 2, hidden: 16, lbWeight: 1, zWeight: 0.5 } });
    const one = new PackedLoader(data, S, 1, 3).next();
    const big = await stepGradients(cfg, 2, 1, [twice(one)]);
    const acc = await stepGradients(cfg, 1, 2, [one, one]);
    expectSameGradients(big, acc);
    // the z-loss is a sum over tokens: with different rows it must match too (balance loss off)
    const cfgZ = presetConfig('tiny', vocab, ['moe', 'mot'], { ...base, moe: { experts: 4, k: 2, hidden: 16, lbWeight: 0, zWeight: 0.5 } });
    const two = new PackedLoader(data, S, 2, 4).next();
    expectSameGradients(await stepGradients(cfgZ, 2, 1, [two]), await stepGradients(cfgZ, 1, 2, [rows(two, 0, 1), rows(two, 1, 2)]));
  });
});
