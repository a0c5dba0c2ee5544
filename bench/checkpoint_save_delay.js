// Event-loop delay while a ~700 MiB checkpoint is saved (weights + AdamW moments, f32), and the
// longest stretch the JS thread ran without a break in CPU time (maxBusyMs, bench/loop_busy.js: what
// the delay would be on an idle machine, whatever the load).
// Usage: node bench/checkpoint_save_delay.js [--small] [outDir]   (needs `npx tsc` first; the target is < 50 ms)
// --small: a ~135 MiB checkpoint (d 512, vocabulary 8000), as test/checkpoint.test.ts runs it in a fresh process.
const os = require('os');
const path = require('path');
const fs = require('fs');
const { monitorEventLoopDelay } = require('perf_hooks');
const { Device } = require('../dist/core/device');
const { presetConfig } = require('../dist/model/config');
const { Model } = require('../dist/model/model');
const { loadCheckpointAsync, saveCheckpoint } = require('../dist/train/checkpoint');
const { AdamW } = require('../dist/train/optimizer');
const { sync } = require('../dist');
const { startBusyProbe } = require('./loop_busy');

(async () => {
  const args = process.argv.slice(2);
  const small = args.includes('--small');
  const out = args.find((a) => a !== '--small') || fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-save-bench-'));
  const size = small ? 8000 : 24000;
  const vocab = { size, modalities: [{ name: 'text', range: [0, size] }] };
  // 2 x 24000 x 1024 embedding/head + 1 layer of d 1024: ~62M parameters, x3 (weights, m, v) x 4 bytes = ~710 MiB
  const cfg = small
    ? presetConfig('tiny', vocab, 'dense', { dModel: 512, layers: 1, heads: 4, kvHeads: 4, ffnHidden: 1408 })
    : presetConfig('tiny', vocab, 'dense', { dModel: 1024, layers: 1, heads: 8, kvHeads: 8, ffnHidden: 2816, maxSeqLen: 256 });
  const model = new Model(cfg, { device: Device.cpu, seed: 1 });
  const opt = new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clipNorm: 0 });
  await sync();
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const busy = startBusyProbe();
  const t0 = performance.now();
  const dir = await saveCheckpoint(out, model, opt, { step: 1, tokens: 0, optimizerStep: 0, loader: { epoch: 0, cursor: 0 }, options: {} });
  const ms = performance.now() - t0;
  h.disable();
  const { maxBusyMs } = busy.stop();
  let bytes = 0;
  for (const f of fs.readdirSync(dir)) bytes += fs.statSync(path.join(dir, f)).size;
  // and reading it back (loadCheckpointAsync: reads, sha256, decoding and the finiteness check)
  const loadBusy = startBusyProbe();
  const t1 = performance.now();
  await loadCheckpointAsync(dir);
  const loadMs = performance.now() - t1;
  const load = loadBusy.stop();
  const r = (x) => (x === null ? null : +x.toFixed(1));
  console.log(JSON.stringify({ checkpointMiB: +(bytes / 2 ** 20).toFixed(1), saveMs: Math.round(ms), maxDelayMs: +(h.max / 1e6).toFixed(1), p99DelayMs: +(h.percentile(99) / 1e6).toFixed(1), meanDelayMs: +(h.mean / 1e6).toFixed(1), maxBusyMs: r(maxBusyMs), loadMs: Math.round(loadMs), loadMaxBusyMs: r(load.maxBusyMs), loadMaxGapMs: r(load.maxGapMs), loadAverage: +os.loadavg()[0].toFixed(1), machine: `${os.cpus().length} cores` }));
  fs.rmSync(out, { recursive: true, force: true });
  model.dispose();
  opt.dispose();
})();
