#!/usr/bin/env node
// A small HTTP service that depends on mixt through its public entry point only. It trains the
// tiny preset in the background on the embedded corpus and serves
//   GET  /metrics              the latest step report, steps done, event-loop delay (ms), memory
//   GET  /generate?caption=..  tokens generated after the caption, streamed as server-sent events
//                              (event "token": {"token", "text"}; then event "done")
//   POST /train/cancel         stops training at the next step boundary, with a checkpoint
// The event loop stays responsive while training runs: ops enqueue native work and return; only
// reads await, off the main thread. Generation and training share the model: the model's queue
// runs their steps one at a time, never interleaved inside one.
//   node examples/service/server.js [--port 8080] [--steps 200] [--out runs/service]
const http = require('http');
const os = require('os');
const path = require('path');
const { monitorEventLoopDelay, performance } = require('perf_hooks');
const mixt = require('mixt');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const port = Number(arg('port', 8080));
const steps = Number(arg('steps', 200));
const out = arg('out', path.join(os.tmpdir(), `mixt-service-${process.pid}`));

// measured while serving and training (not during start-up, which loads and builds things)
const delay = monitorEventLoopDelay({ resolution: 10 });

const model = mixt.createModel('tiny', { device: process.env.MIXT_DEVICE || 'cpu', seed: 1 });
const corpus = mixt.data.embeddedCorpus({ docs: 5000 });
const cancel = new AbortController();
const state = { latest: null, done: false, aborted: false, checkpoint: null, error: null };

// event-loop utilization over the training window: the share of it the loop spent running JavaScript
// (a machine's load does not raise it; a step that blocked the loop would hold it near 1)
let eluStart = null, eluEnd = null;

async function trainInBackground() {
  eluStart = performance.eventLoopUtilization();
  try {
    const run = mixt.train(model, corpus, { steps, batch: 4, seqLen: 256, lr: 4e-3, out, signal: cancel.signal });
    run.on('checkpoint', (e) => (state.checkpoint = e.dir));
    for await (const r of run) state.latest = r;
    const s = await run.summary;
    state.aborted = s.aborted;
  } catch (e) {
    state.error = String(e && e.message);
  }
  eluEnd = performance.eventLoopUtilization(eluStart);
  state.done = true;
}

async function streamTokens(req, res, url) {
  let prompt;
  try {
    const caption = url.searchParams.get('caption') || 'a big red circle at the center on black';
    prompt = [mixt.data.specialTokens.bos, ...mixt.data.tokenizeCaption(caption), mixt.data.specialTokens.boi];
  } catch (e) {
    res.statusCode = 400;
    res.end(String(e && e.message));
    return;
  }
  const maxTokens = Math.min(256, Number(url.searchParams.get('tokens') || 20));
  const seed = Number(url.searchParams.get('seed') || 1);
  const temperature = Number(url.searchParams.get('temperature') || 0.8);
  const gone = new AbortController(); // the client left: stop generating
  res.on('close', () => gone.abort());
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  try {
    let n = 0;
    for await (const token of model.generate(prompt, { maxTokens, seed, temperature, signal: gone.signal })) {
      res.write(`event: token\ndata: ${JSON.stringify({ token, text: mixt.data.tokenName(token) })}\n\n`);
      n++;
    }
    res.end(`event: done\ndata: ${JSON.stringify({ tokens: n })}\n\n`);
  } catch (e) {
    res.end(`event: error\ndata: ${JSON.stringify({ message: String(e && e.message) })}\n\n`);
  }
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/metrics') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({
      step: state.latest ? state.latest.step : 0, steps, ...state,
      eventLoopDelayMs: { max: delay.max / 1e6, p99: delay.percentile(99) / 1e6, mean: delay.mean / 1e6 },
      eventLoopUtilization: (eluEnd ?? (eluStart ? performance.eventLoopUtilization(eluStart) : { utilization: 0 })).utilization,
      memory: mixt.memory(),
    }));
    return;
  }
  if (req.method === 'GET' && url.pathname === '/generate') {
    streamTokens(req, res, url);
    return;
  }
  if (req.method === 'POST' && url.pathname === '/train/cancel') {
    cancel.abort();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ cancelling: true }));
    return;
  }
  res.statusCode = 404;
  res.end('GET /metrics, GET /generate?caption=..., POST /train/cancel\n');
});

// Start-up: one short generation warms the code paths before the delay is measured.
(async () => {
  for await (const _ of model.generate([mixt.data.specialTokens.bos], { maxTokens: 2, seed: 0 }));
  server.listen(port, '127.0.0.1', () => {
    console.log(`listening on ${server.address().port}`);
    delay.enable();
    trainInBackground();
  });
})();
