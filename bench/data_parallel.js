// Data-parallel step on CPU ranks: the step time with the gradient all-reduce overlapped with the
// backward (buckets handed to the communication thread as layers finish) and without (all after
// the backward), and the all-reduce of all gradients alone. Numbers for bench/SCALING.md.
// Usage (needs `npx tsc` first): mpirun -n 2 node bench/data_parallel.js [steps]
const os = require('os');
const { Device } = require('../dist/core/device');
const { presetConfig, parameterCount } = require('../dist/model/config');
const { Model } = require('../dist/model/model');
const { shapesCorpus } = require('../dist/train/data/dataset');
const { GradientReducer, initDataParallel } = require('../dist/train/distributed');
const { TRAIN_DEFAULTS, Trainer } = require('../dist/train/trainer');
const { sync } = require('../dist');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  const steps = Number(process.argv[2] || 6);
  const dp = await initDataParallel(Device.cpu, { bucketBytes: 1 << 20 });
  const data = shapesCorpus({ docs: 2000, seed: 1 });
  const vocab = { size: data.vocab.size, modalities: data.vocab.modalities.map((m) => ({ name: m.name, range: m.range })) };
  const cfg = presetConfig('tiny', vocab, Array(4).fill('mot'), { dModel: 192, layers: 4, heads: 4, kvHeads: 2, ffnHidden: 512 });
  const opts = { ...TRAIN_DEFAULTS, steps: 1000, batch: 2 * dp.comm.size, seqLen: 128 };
  const result = { ranks: dp.comm.size, parameters: parameterCount(cfg).total, tokensPerRank: 2 * 128, machine: `${os.cpus().length} cores` };
  for (const overlap of [true, false, true, false]) {
    const model = new Model(cfg, { device: Device.cpu, seed: 1 });
    const trainer = new Trainer(model, data, opts, 'cpu', { ...dp, overlap });
    const ms = [];
    for (let i = 0; i < steps + 1; i++) ms.push((await trainer.trainStep()).ms);
    const key = overlap ? 'stepMsOverlap' : 'stepMsAfterBackward';
    result[key] = [...(result[key] ?? []), Math.round(median(ms.slice(1)))];
    // the all-reduce alone, of the same gradients in the same buckets
    if (!overlap) {
      const grads = model.parameters().map((p) => p.gradOrZeros());
      const t = [];
      for (let i = 0; i < steps; i++) {
        await dp.comm.barrier();
        const t0 = performance.now();
        new GradientReducer(dp, model.parameters()).finish();
        await sync();
        t.push(performance.now() - t0);
      }
      result.allReduceMs = [...(result.allReduceMs ?? []), +median(t).toFixed(1)];
      result.gradientMiB = +(grads.reduce((a, g) => a + g.nbytes, 0) / 2 ** 20).toFixed(2);
    }
    trainer.dispose();
    model.dispose();
  }
  if (dp.comm.rank === 0) console.log(JSON.stringify(result));
  await dp.comm.finalize();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
