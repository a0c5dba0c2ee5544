import { monitorEventLoopDelay } from 'perf_hooks';
import { Worker } from 'worker_threads';
import * as path from 'path';
import * as mixt from '../lib';
import { randn } from './helpers';

describe('ordered streams', () => {
  test('ops return at once; a large CPU matmul never blocks the event loop (delay < 50 ms)', async () => {
    const n = 1024;
    const a = mixt.tensor(randn(n * n, 1), [n, n]); // f64: ~2 GFLOP per product
    const b = mixt.tensor(randn(n * n, 2), [n, n]);
    // One measured run: two products enqueued, the loop kept busy with timers while they run on the
    // native worker, then the read awaited.
    const attempt = async () => {
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      const t0 = performance.now();
      const c = mixt.matmul(a, b);
      const d = mixt.matmul(c, b);
      const enqueueMs = performance.now() - t0;
      let ticks = 0;
      const timer = setInterval(() => ticks++, 2);
      await d.toArray();
      clearInterval(timer);
      h.disable();
      c.dispose();
      d.dispose();
      return { enqueueMs, totalMs: performance.now() - t0, ticks, maxDelayMs: h.max / 1e6 };
    };
    // A blocking op blocks every run; a garbage-collection pause of this long-lived test process
    // (the whole suite runs in it) can spoil one: the best of three runs is what is judged.
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const r = await attempt();
      runs.push(r);
      expect(r.enqueueMs).toBeLessThan(50);
      expect(r.totalMs).toBeGreaterThan(r.enqueueMs);
      expect(r.ticks).toBeGreaterThan(0);
      if (r.maxDelayMs < 50) break;
    }
    expect(Math.min(...runs.map((r) => r.maxDelayMs))).toBeLessThan(50);
    a.dispose();
    b.dispose();
  });

  test('results come back in stream order', async () => {
    const x = mixt.zeros([1000]);
    for (let i = 0; i < 50; i++) mixt.scale(x, 1, 1, x); // x += 1, fifty times
    expect((await x.toArray())[999]).toBe(50);
  });

  test('the addon works from two worker threads at once', async () => {
    const script = path.join(__dirname, 'fixtures', 'worker-matmul.js');
    const run = (seed: number) =>
      new Promise<number[]>((resolve, reject) => {
        const w = new Worker(script, { workerData: { seed } });
        w.once('message', resolve);
        w.once('error', reject);
      });
    const [r1, r2] = await Promise.all([run(1), run(2)]);
    // Each worker checked its product against a reference itself; the sums differ by seed.
    expect(r1[0]).toBe(1);
    expect(r2[0]).toBe(1);
    expect(r1[1]).not.toBe(r2[1]);
  });
});
