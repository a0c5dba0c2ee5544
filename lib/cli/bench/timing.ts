// Timing with device-side marks (CUDA events; the CPU queue's clock): warm-up runs, then each
// timed run bracketed by marks; the median is reported.
import { Device } from '../../core/device';
import { elapsedMs, mark, sync } from '../../core/runtime';

export interface Timing {
  medianMs: number;
  minMs: number;
  runs: number;
  firstMs?: number; // the timed first warm-up run the run count was cut by (when a budget applies)
}

// A run may be async (a training step awaits its statistics): then it is awaited inside its marks.
// A case whose single run is slow gets fewer runs, so one slow kernel cannot stall a whole suite:
// the first warm-up run is timed and the run count cut to fit `budgetMs` (never below 3 timed runs).
export async function timeRuns(device: Device, run: (i: number) => void | Promise<void>, warmup: number, iters: number, budgetMs = Infinity): Promise<Timing> {
  let done = 0;
  let firstMs: number | undefined;
  if (warmup > 0 && Number.isFinite(budgetMs)) {
    const a = mark(device);
    const r = run(done++);
    if (r instanceof Promise) await r;
    firstMs = await elapsedMs(a, mark(device));
    const fit = Math.floor(budgetMs / Math.max(firstMs, 1e-3));
    iters = Math.max(3, Math.min(iters, fit));
    warmup = Math.min(warmup, Math.max(1, fit - iters));
  }
  for (; done < warmup; done++) await run(done);
  await sync();
  const marks = [];
  for (let i = 0; i < iters; i++) {
    const a = mark(device);
    const r = run(warmup + i);
    if (r instanceof Promise) await r;
    marks.push([a, mark(device)] as const);
  }
  const ms: number[] = [];
  for (const [a, b] of marks) ms.push(await elapsedMs(a, b));
  ms.sort((x, y) => x - y);
  return { medianMs: ms[Math.floor(ms.length / 2)], minMs: ms[0], runs: iters, ...(firstMs !== undefined ? { firstMs } : {}) };
}
