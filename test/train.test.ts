import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as mixt from '../lib';
import { Device } from '../lib/core/device';
import { presetConfig, ModelConfig } from '../lib/model/config';
import { Model } from '../lib/model/model';
import { Batch } from '../lib/nn/batch';
import { loadCheckpoint, restoreCheckpoint } from '../lib/train/checkpoint';
import { shapesCorpus } from '../lib/train/data/dataset';
import { PackedLoader } from '../lib/train/data/loader';
import { SHAPES_VOCAB } from '../lib/train/data/shapes';
import { TRAIN_DEFAULTS, TrainOptions, Trainer } from '../lib/train/trainer';
import { values } from './helpers';
import { checkParameterGradients } from './gradcheck';

const vocab = { size: SHAPES_VOCAB.size, modalities: SHAPES_VOCAB.modalities.map((m) => ({ name: m.name, range: m.range })) };
const small = (blocks: 'mot' | 'dense' = 'mot'): ModelConfig =>
  presetConfig('tiny', vocab, blocks, { dModel: 32, layers: 2, heads: 4, kvHeads: 2, ffnHidden: 48 });
const opts = (steps: number): TrainOptions => ({ ...TRAIN_DEFAULTS, steps, batch: 2, seqLen: 96, lr: 5e-3, minLr: 5e-4, warmup: 5 });
const data = shapesCorpus({ docs: 400, seed: 4 });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-train-'));

describe('model', () => {
  test('the whole model passes a finite-difference check (embedding, blocks, final norm, head, loss)', async () => {
    const cfg = presetConfig('tiny', vocab, ['mot', 'dense'], { dModel: 8, layers: 2, heads: 2, kvHeads: 1, ffnHidden: 12, tieEmbeddings: true });
    const model = new Model(cfg, { device: Device.cpu, masterDtype: 'f64', seed: 3 });
    const hb = new PackedLoader(data, 40, 1, 2).next();
    const w = new Float32Array(hb.targets.length).map((_, i) => (hb.targets[i] >= 0 ? 1 / 40 : 0));
    const inputs = () => ({
      batch: new Batch({ modality: hb.modality, docIds: hb.docIds, positions: hb.positions }, 3, Device.cpu),
      tokens: hb.tokens, targets: hb.targets, targetModality: hb.targetModality, lossWeights: w,
    });
    const lossValue = async () => {
      const inp = inputs();
      const st = model.forward(inp);
      model.clearSaved();
      const s = await st.lossSums.toArray();
      inp.batch.dispose();
      return Array.from(s).reduce((a, b) => a + b, 0) / 40;
    };
    const inp = inputs();
    model.forward(inp);
    model.backward();
    const params = [model.embed, ...model.blocks[0].parameters().slice(0, 4), ...model.blocks[1].parameters().slice(-2), ...model.finalNorm.parameters()];
    await checkParameterGradients(params, lossValue, { probes: 4, eps: 1e-5, floor: 1e-5 });
  });
});

describe('the dense baseline', () => {
  const lossOf = async (model: Model) => {
    const hb = new PackedLoader(data, 64, 2, 9).next();
    const batch = new Batch({ modality: hb.modality, docIds: hb.docIds, positions: hb.positions, rowLength: 64 }, 3, Device.cpu);
    const st = model.forward({ batch, tokens: hb.tokens, targets: hb.targets, targetModality: hb.targetModality, lossWeights: new Float32Array(hb.targets.length) });
    model.clearSaved();
    const v = Array.from(await st.lossSums.toArray());
    st.dispose();
    batch.dispose();
    return v;
  };

  test('dense shares every weight, the final norm included; an older dense checkpoint (final_norm.weight.{modality}) loads as trained', async () => {
    const dense = new Model(small('dense'), { device: Device.cpu, seed: 2 });
    expect(dense.finalNorm.weight.groups).toBe(1);
    expect(dense.parameters().filter((p) => p.groups > 1).map((p) => p.name)).toEqual([]);
    const fresh = new Trainer(dense, data, opts(1));
    await fresh.trainStep();
    const names = [...loadCheckpoint(await fresh.save(tmp())).weights.tensors.keys()];
    expect(names).toContain('final_norm.weight');
    expect(names.filter((n) => n.startsWith('final_norm.'))).toEqual(['final_norm.weight']);
    // a checkpoint in the older layout: what a dense model was (one final norm per modality), saved
    // by a writer that knew no `finalNorm` field
    const old = new Model({ ...small('dense'), finalNorm: 'modality' }, { device: Device.cpu, seed: 3 });
    const tr = new Trainer(old, data, opts(3));
    while (tr.step < 3) await tr.trainStep();
    const dir = await tr.save(tmp());
    const statePath = path.join(dir, 'state.json');
    const state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
    delete state.config.finalNorm;
    fs.writeFileSync(statePath, JSON.stringify(state));
    const ck = loadCheckpoint(dir);
    expect(ck.weights.tensors.has('final_norm.weight.text')).toBe(true);
    expect(ck.config.finalNorm).toBe('modality');
    const loaded = new Model(ck.config, { device: Device.cpu });
    restoreCheckpoint(ck, loaded);
    const w = await values(loaded.finalNorm.weight.value);
    expect(w.slice(0, 32)).not.toEqual(w.slice(32, 64)); // the per-modality norms did train apart
    expect(await lossOf(loaded)).toEqual(await lossOf(old));
  });

  test('a MoD checkpoint saves how its capacity is taken (so a later default cannot change what it means)', async () => {
    for (const capacityBy of [undefined, 'modality'] as const) {
      const cfg = presetConfig('tiny', vocab, ['mot', 'mod'], { dModel: 32, layers: 2, heads: 4, kvHeads: 2, ffnHidden: 48, ...(capacityBy ? { mod: { capacityBy } } : {}) });
      const tr = new Trainer(new Model(cfg, { device: Device.cpu, seed: 5 }), data, opts(1));
      await tr.trainStep();
      const saved = JSON.parse(fs.readFileSync(path.join(await tr.save(tmp()), 'state.json'), 'utf8')).config;
      expect(saved.mod.capacityBy).toBe(capacityBy ?? 'sequence');
      tr.dispose();
      tr.model.dispose();
    }
  });
});

describe('training', () => {
  test('a small MoT model learns every modality (loss falls well below the first steps)', async () => {
    const model = new Model(small(), { device: Device.cpu, seed: 1 });
    const tr = new Trainer(model, data, { ...opts(150), batch: 4, seqLen: 128 });
    while (tr.step < 150) await tr.trainStep();
    const first = tr.history.slice(0, 5), last = tr.history.slice(-20);
    const mean = (h: typeof first, m: number) => {
      const v = h.map((r) => r.modalities[m].loss).filter(Number.isFinite); // a batch may hold no target of a modality
      return v.reduce((a, b) => a + b, 0) / v.length;
    };
    for (let m = 0; m < 3; m++) expect(mean(last, m)).toBeLessThan(0.75 * mean(first, m));
    expect(last[last.length - 1].gradNorm).toBeGreaterThan(0);
    tr.dispose();
    model.dispose();
  });

  test('resume continues the same loss curve bit for bit (CPU)', async () => {
    const out = tmp();
    const run = async (steps: number, from?: string) => {
      const model = new Model(small(), { device: Device.cpu, seed: 5 });
      const tr = new Trainer(model, data, opts(8));
      if (from) tr.restore(loadCheckpoint(from));
      while (tr.step < steps) await tr.trainStep();
      return { tr, model };
    };
    const full = await run(8);
    const half = await run(4);
    const ck = await half.tr.save(out);
    const resumed = await run(8, ck);
    const losses = (t: Trainer) => t.history.map((r) => r.loss);
    expect(losses(resumed.tr)).toEqual(losses(full.tr));
    for (const [a, b] of full.model.parameters().map((p, i) => [p, resumed.model.parameters()[i]] as const)) {
      expect(Buffer.from((await a.value.toArray()).buffer).equals(Buffer.from((await b.value.toArray()).buffer))).toBe(true);
    }
  });

  test('checkpoints carry readable per-modality names; a corrupted file is a clear error', async () => {
    const out = tmp();
    const model = new Model(small(), { device: Device.cpu, seed: 5 });
    const tr = new Trainer(model, data, opts(1));
    await tr.trainStep();
    const dir = await tr.save(out);
    const ck = loadCheckpoint(out); // the run directory resolves through `latest`
    expect(ck.dir).toBe(dir);
    const names = [...ck.weights.tensors.keys()];
    expect(names).toContain('layers.0.attn.wq.text');
    expect(names).toContain('layers.1.ffn.w_down.tone');
    expect(names).toContain('final_norm.weight.image');
    expect(names).toContain('embed.weight');
    const f = path.join(dir, 'model.safetensors');
    const buf = fs.readFileSync(f);
    buf[buf.length - 3] ^= 0xff;
    fs.writeFileSync(f, buf);
    expect(() => loadCheckpoint(dir)).toThrow(/model.safetensors is corrupted \(sha256 mismatch\)/);
  });

  test('a non-finite gradient is named and the step skipped, or training stops, by option', async () => {
    for (const onNonFinite of ['skip', 'stop'] as const) {
      const model = new Model(small(), { device: Device.cpu, seed: 5 });
      const tr = new Trainer(model, data, { ...opts(3), onNonFinite });
      await tr.trainStep();
      const p = model.blocks[1].parameters().find((q) => q.name.endsWith('ffn.w_down'))!;
      const w = await values(p.value);
      w[3] = NaN;
      p.load(mixt.tensor(Float32Array.from(w), [...p.shape]));
      if (onNonFinite === 'skip') {
        const r = await tr.trainStep();
        expect(r.skipped).toMatch(/non-finite gradient in [\w.]+ at step 2/);
      } else {
        await expect(tr.trainStep()).rejects.toThrow(/training stopped: non-finite gradient in [\w.]+ at step 2/);
      }
    }
  });
});
