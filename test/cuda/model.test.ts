// The MoT block and a few training steps on CUDA (bf16 compute, fp32 masters) against the CPU.
import * as mixt from '../../lib';
import { Device } from '../../lib/core/device';
import { presetConfig } from '../../lib/model/config';
import { Model } from '../../lib/model/model';
import { shapesCorpus } from '../../lib/train/data/dataset';
import { SHAPES_VOCAB } from '../../lib/train/data/shapes';
import { TRAIN_DEFAULTS, Trainer } from '../../lib/train/trainer';
import { PATCH_DIM, transfusionCorpus } from '../../lib/train/data/transfusion';
import { describeCuda } from '../helpers';

const vocab = { size: SHAPES_VOCAB.size, modalities: SHAPES_VOCAB.modalities.map((m) => ({ name: m.name, range: m.range })) };

describeCuda('training on CUDA', () => {
  test('the same model and data give the same losses on CUDA (bf16) as on the CPU (f32), within bf16 tolerance, and both learn', async () => {
    const cfg = presetConfig('tiny', vocab, 'mot', { dModel: 128, layers: 2, heads: 2, kvHeads: 1, headDim: 64, ffnHidden: 256 });
    const data = shapesCorpus({ docs: 500 });
    const run = async (device: Device) => {
      const model = new Model(cfg, { device, seed: 3 });
      const tr = new Trainer(model, data, { ...TRAIN_DEFAULTS, steps: 30, batch: 4, seqLen: 256, lr: 3e-3, minLr: 3e-4, warmup: 5 });
      while (tr.step < 30) await tr.trainStep();
      return tr.history.map((r) => r.loss);
    };
    const cpu = await run(Device.cpu);
    const cuda = await run(mixt.device('cuda'));
    expect(Math.abs(cuda[0] - cpu[0]) / cpu[0]).toBeLessThan(0.02);
    expect(cuda[29]).toBeLessThan(0.7 * cuda[0]);
    expect(Math.abs(cuda[29] - cpu[29]) / cpu[29]).toBeLessThan(0.15);
  });

  test('every routed block kind and the Transfusion objective train on CUDA as on the CPU', async () => {
    const data = shapesCorpus({ docs: 500 });
    const tf = transfusionCorpus({ docs: 500 });
    for (const [kinds, ds, extra] of [
      [['mot', 'mod'], data, {}], [['moe'], data, {}], [['mode-staged'], data, {}], [['mode-integrated'], data, {}], [['mot+moe'], data, {}],
      [['mot'], tf, { transfusion: { patchDim: PATCH_DIM, lambda: 5, timesteps: 1000 } }],
    ] as const) {
      const cfg = presetConfig('tiny', vocab, kinds.length === 2 ? [...kinds] : [kinds[0], kinds[0]], { dModel: 128, layers: 2, heads: 2, kvHeads: 1, headDim: 64, ffnHidden: 256, moe: { experts: 4, k: 2, hidden: 128 }, ...extra });
      const run = async (device: Device) => {
        const tr = new Trainer(new Model(cfg, { device, seed: 3 }), ds, { ...TRAIN_DEFAULTS, steps: 20, batch: 2, seqLen: 256, lr: 3e-3, minLr: 3e-4, warmup: 5 });
        while (tr.step < 20) await tr.trainStep();
        return tr.history;
      };
      const cpu = await run(Device.cpu), cuda = await run(mixt.device('cuda'));
      expect(Math.abs(cuda[0].loss - cpu[0].loss) / cpu[0].loss).toBeLessThan(0.03);
      expect(cuda[19].loss).toBeLessThan(0.8 * cuda[0].loss);
      if (cpu[0].diffusionLoss !== undefined) expect(Math.abs(cuda[0].diffusionLoss! - cpu[0].diffusionLoss!) / cpu[0].diffusionLoss!).toBeLessThan(0.05);
    }
  });
});
