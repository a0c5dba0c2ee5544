import { Worker } from 'worker_threads';
import * as path from 'path';
import * as mixt from '../lib';
import { randn } from './helpers';
import { describeProbe, probeLoop } from './loop_probe';

describe('ordered streams', () => {
  // What it proves: the products run off the JS thread: while they run, the loop is idle most of the
  // window (test/loop_probe.ts; a share of the window itself, so a loaded machine does not fail it),
  // and enqueueing takes a small share of the products' time.
  // test/loop_probe.test.ts shows the same verdict holds beside a CPU hog and catches a blocking op.
  test('ops return at once; a large CPU matmul leaves the event loop free while it runs', async () => {
    const n = 1024;
    const a = mixt.tensor(randn(n * n, 1), [n, n]); // f64: ~2 GFLOP per product
    const b = mixt.tensor(randn(n * n, 2), [n, n]);
    let enqueueMs = 0;
    const probe = await probeLoop(async () => {
      const t0 = performance.now();
      const c = mixt.matmul(a, b);
      const d = mixt.matmul(c, b);
      enqueueMs = performance.now() - t0;
      await d.toArray();
      c.dispose();
      d.dispose();
    });
    expect(probe.ticks).toBeGreaterThan(0);
    expect(describeProbe(probe)).toMatch(/blocked: false$/);
    expect(enqueueMs).toBeLessThan(0.25 * probe.ms);
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
