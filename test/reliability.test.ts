// Library-grade behaviour: no leaks over hundreds of training steps, checkpoints that survive
// SIGKILL during saves, and a service that keeps its event loop responsive while it trains.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { loadCheckpoint } from '../lib/train/checkpoint';
import { rng } from './helpers';

const root = path.resolve(__dirname, '..');

describe('no leaks', () => {
  test('live tensors and bytes stay flat over 300 training steps (MoT, MoD and MoE layers)', async () => {
    // In its own worker thread: its addon instance counts only this run's tensors.
    type Sample = { step: number; tensors: number; bytes: number; rss: number };
    type Counts = { tensors: number; bytes: number };
    const res = await new Promise<{ samples: Sample[]; before: Counts; after: Counts; error?: string }>((resolve, reject) => {
      const w = new Worker(path.join(__dirname, 'fixtures', 'leak-worker.js'), { workerData: { steps: 300 } });
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(res.error).toBeUndefined();
    const { samples } = res;
    expect(samples.length).toBe(6);
    expect(samples[0].tensors).toBeGreaterThan(res.before.tensors); // the model, moments and caches are counted
    // after the first steps (moments, gradients and caches exist), nothing grows
    for (const s of samples.slice(1)) {
      expect(s.tensors).toBe(samples[0].tensors);
      expect(s.bytes).toBe(samples[0].bytes);
    }
    expect(samples[samples.length - 1].rss - samples[0].rss).toBeLessThan(64 * 2 ** 20);
    // and disposing the trainer and the model gives every tensor back
    expect(res.after).toEqual(res.before);
  });
});

describe('crash-safe checkpoints', () => {
  test('SIGKILL during checkpoint saves: the last complete checkpoint always loads and resumes', async () => {
    const kills = Number(process.env.MIXT_KILL_ROUNDS ?? 8);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-kill-'));
    const cfgFile = path.join(out, 'config.json');
    fs.writeFileSync(cfgFile, JSON.stringify({ dModel: 16, layers: 1, heads: 2, kvHeads: 1, ffnHidden: 24 }));
    const r = rng(99);
    let resumedFrom = 0;
    for (let round = 0; round < kills; round++) {
      const args = [path.join(root, 'bin', 'mixt.js'), 'train', '--config', cfgFile, '--steps', '100000', '--batch', '1', '--seq', '64', '--checkpoint-every', '1', '--out', out, '--json', '--device', 'cpu'];
      if (fs.existsSync(path.join(out, 'latest'))) args.push('--resume', out);
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, MIXT_SKIP_LOAD_CHECK: '1' } });
      // wait for a few steps, then kill at a random moment (saves happen every step)
      await new Promise<void>((resolve) => {
        let steps = 0;
        child.stdout!.on('data', (d: Buffer) => {
          steps += d.toString().split('\n').filter((l) => l.includes('"type":"step"')).length;
          if (steps >= 3) resolve();
        });
        child.on('exit', () => resolve());
      });
      await new Promise((res) => setTimeout(res, Math.floor(r() * 120)));
      child.kill('SIGKILL');
      await new Promise((res) => child.on('exit', res));
      const ck = loadCheckpoint(out); // the latest complete one
      expect(ck.train.step).toBeGreaterThan(resumedFrom);
      resumedFrom = ck.train.step;
      // leftovers of an interrupted save are temporary directories, never a half checkpoint
      for (const f of fs.readdirSync(out)) expect(/^(step-\d{6}(\.tmp-.*)?|latest(\.tmp-.*)?|config\.json)$/.test(f)).toBe(true);
    }
    expect(resumedFrom).toBeGreaterThan(kills);
  }, 300000);
});

function get(port: number, p: string): Promise<{ status: number; body: Buffer; type: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), type: String(res.headers['content-type']) }));
    }).on('error', reject);
  });
}

// Server-sent events of one request: [event, data] pairs, in order.
function events(port: number, p: string): Promise<{ status: number; events: [string, unknown][] }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve({ status: res.statusCode ?? 0, events: [] });
        const evs = text.split('\n\n').filter(Boolean).map((block): [string, unknown] => {
          const ev = /^event: (.*)$/m.exec(block)![1], data = /^data: (.*)$/m.exec(block)![1];
          return [ev, JSON.parse(data)];
        });
        resolve({ status: 200, events: evs });
      });
    }).on('error', reject);
  });
}

function post(port: number, p: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('as a dependency: the example service', () => {
  let child: ChildProcess | null = null;
  afterAll(() => child?.kill('SIGKILL'));

  test('trains in the background, streams generated tokens (SSE), cancels training with a checkpoint, the event loop stays free while it trains', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-service-test-'));
    child = spawn(process.execPath, [path.join(root, 'examples', 'service', 'server.js'), '--port', '0', '--steps', '400', '--out', out], {
      stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, MIXT_DEVICE: 'cpu' },
    });
    const port = await new Promise<number>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => {
        const m = /listening on (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      });
      child!.on('exit', (c) => reject(new Error(`service exited with ${c}`)));
    });
    type Metrics = { step: number; done: boolean; aborted: boolean; checkpoint: string | null; eventLoopDelayMs: { max: number }; eventLoopUtilization: number; latest: { loss: number } | null };
    const metrics = async (): Promise<Metrics> => JSON.parse((await get(port, '/metrics')).body.toString());
    let m = await metrics();
    while (m.step < 3) {
      await new Promise((r) => setTimeout(r, 100));
      m = await metrics();
    }
    // two streams at once while training runs: each gets its 20 tokens, the same as alone
    const ask = '/generate?caption=a%20big%20red%20circle%20at%20the%20center%20on%20black&tokens=20&seed=4';
    const [a, b] = await Promise.all([events(port, ask), events(port, ask.replace('seed=4', 'seed=5'))]);
    for (const r of [a, b]) {
      expect(r.status).toBe(200);
      expect(r.events.filter(([e]) => e === 'token')).toHaveLength(20);
      expect(r.events[r.events.length - 1]).toEqual(['done', { tokens: 20 }]);
    }
    expect((await events(port, '/generate?caption=a%20purple%20thing')).status).toBe(400);
    expect(await post(port, '/train/cancel')).toBe(200);
    while (!(m = await metrics()).done) await new Promise((r) => setTimeout(r, 100));
    expect(m.aborted).toBe(true);
    expect(m.step).toBeLessThan(400);
    expect(m.checkpoint).toContain(out);
    expect(fs.existsSync(path.join(m.checkpoint!, 'model.safetensors'))).toBe(true);
    expect(m.latest!.loss).toBeGreaterThan(0);
    // What it proves about the loop: while the service trains and streams, its loop is mostly idle
    // (utilization over the training window: a machine's load does not raise it, a step that blocked
    // the loop would hold it near 1; test/loop_probe.test.ts shows the same measure beside a CPU hog
    // and against a blocking op). The raw delay is reported, not judged: a busy machine alone exceeds 50 ms.
    expect(m.eventLoopUtilization).toBeGreaterThan(0);
    expect(m.eventLoopUtilization).toBeLessThan(0.5);
    fs.rmSync(out, { recursive: true, force: true });
  }, 300000);
});
