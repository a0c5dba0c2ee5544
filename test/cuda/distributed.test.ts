// NCCL at world size 1 on one GPU: the data-parallel code path (broadcast at start, bucketed
// all-reduce of the bf16 gradients on the stream, statistics) trains exactly as the plain trainer.
// Skipped (visibly) without a usable GPU or where NCCL is not installed.
import { Device } from '../../lib/core/device';
import { presetConfig } from '../../lib/model/config';
import { Model } from '../../lib/model/model';
import { shapesCorpus } from '../../lib/train/data/dataset';
import { DataParallel, initDataParallel } from '../../lib/train/distributed';
import { TRAIN_DEFAULTS, Trainer } from '../../lib/train/trainer';
import { describeCuda } from '../helpers';

describeCuda('data parallel through NCCL, world size 1', () => {
  test('the losses and gradient norms equal the plain trainer', async () => {
    const device = Device.of(0);
    let dp: DataParallel;
    try {
      dp = await initDataParallel(device, { bucketBytes: 1 << 16 });
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_COMM_UNAVAILABLE') throw e;
      return console.log(`skipped: ${(e as Error).message}`);
    }
    expect(dp.comm.describe()).toMatch(/rank 0 of 1, NCCL \(libnccl/);
    const data = shapesCorpus({ docs: 400, seed: 1 });
    const vocab = { size: data.vocab.size, modalities: data.vocab.modalities.map((m) => ({ name: m.name, range: m.range })) };
    const cfg = presetConfig('tiny', vocab, ['mot', 'mot', 'mot']);
    const opts = { ...TRAIN_DEFAULTS, steps: 4, batch: 4, seqLen: 128 };
    const curve = async (parallel?: DataParallel) => {
      const model = new Model(cfg, { device, seed: 3 });
      const t = new Trainer(model, data, opts, 'gpu', parallel);
      const out: [number, number][] = [];
      for (let i = 0; i < 4; i++) {
        const r = await t.trainStep();
        out.push([r.loss, r.gradNorm]);
      }
      t.dispose();
      model.dispose();
      return out;
    };
    const plain = await curve();
    const nccl = await curve(dp);
    nccl.forEach(([loss, norm], i) => {
      expect(loss).toBeCloseTo(plain[i][0], 5);
      expect(norm).toBeCloseTo(plain[i][1], 4);
    });
    await dp.comm.finalize();
  });
});
