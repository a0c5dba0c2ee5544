#!/usr/bin/env node
// A small HTTP service that depends on mixt: it trains the tiny preset in the background on the
// embedded corpus and serves
//   GET /metrics            the latest step report, steps done, tokens/s, event-loop delay (ms)
//   GET /sample?caption=..  a picture drawn by the current weights, as a PNG
// The event loop stays responsive while training runs: ops enqueue native work and return; only
// reads await, off the main thread.
//   node examples/service/server.js [--port 8080] [--steps 200]
const http = require('http');
const { monitorEventLoopDelay, performance } = require('perf_hooks');

// Inside this repository; an installed service would `require('mixt')` and its submodules the same way.
const lib = (p) => require(`../../dist/${p}`);
const mixt = lib('index');
const { presetConfig } = lib('model/config');
const { Model } = lib('model/model');
const { Trainer, TRAIN_DEFAULTS } = lib('train/trainer');
const { shapesCorpus } = lib('train/data/dataset');
const { SHAPES_VOCAB, GRID, PALETTE, PALETTE_RGB, tokenizeCaption } = lib('train/data/shapes');
const { drawPicture } = lib('cli/sample');
const { gridPng } = lib('cli/png');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const port = arg('port', 8080);
const steps = arg('steps', 200);

// measured while serving and training (not during start-up, which loads and builds things)
const delay = monitorEventLoopDelay({ resolution: 10 });
// and the share of the training time the loop spent running JavaScript (the rest it was free): a
// load-independent measure of whether training blocks it (a blocking step keeps it near 1)
let eluStart = null, eluEnd = null;

const device = mixt.chooseDevice(process.env.MIXT_DEVICE || 'cpu').device;
const data = shapesCorpus({ docs: 5000, seed: 1 });
const model = new Model(presetConfig('tiny', SHAPES_VOCAB), { device, seed: 1 });
const trainer = new Trainer(model, data, { ...TRAIN_DEFAULTS, steps, batch: 4, seqLen: 256, lr: 4e-3, minLr: 4e-4 });
const state = { latest: null, done: false, error: null };

// Training steps and samples share the model's saved activations: one at a time, in arrival order.
let tail = Promise.resolve();
function exclusive(fn) {
  const run = tail.then(fn);
  tail = run.catch(() => undefined);
  return run;
}

async function trainLoop() {
  eluStart = performance.eventLoopUtilization();
  try {
    while (trainer.step < steps) {
      state.latest = await exclusive(() => trainer.trainStep());
      await new Promise((r) => setImmediate(r)); // let requests in between steps
    }
    eluEnd = performance.eventLoopUtilization(eluStart);
    state.done = true;
  } catch (e) {
    state.error = String(e && e.message);
  }
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/metrics') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({
      step: trainer.step, steps, done: state.done, error: state.error, latest: state.latest,
      eventLoopDelayMs: { max: delay.max / 1e6, p99: delay.percentile(99) / 1e6, mean: delay.mean / 1e6 },
      eventLoopUtilization: (eluEnd || (eluStart && performance.eventLoopUtilization(eluStart)) || { utilization: 0 }).utilization,
      memory: mixt.memory(),
    }));
    return;
  }
  if (url.pathname === '/sample') {
    try {
      const words = tokenizeCaption(url.searchParams.get('caption') || 'a big red circle at the center on black');
      const img = await exclusive(() => drawPicture(model, words, 0.7, 1));
      res.setHeader('content-type', 'image/png');
      res.end(gridPng(img, GRID, GRID, PALETTE.map((c) => PALETTE_RGB[c])));
    } catch (e) {
      res.statusCode = 400;
      res.end(String(e && e.message));
    }
    return;
  }
  res.statusCode = 404;
  res.end('GET /metrics or /sample?caption=...\n');
});

server.listen(port, () => {
  console.log(`listening on ${server.address().port}`);
  delay.enable();
  trainLoop();
});
