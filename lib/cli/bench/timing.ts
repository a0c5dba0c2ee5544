// Timing with device-side marks (CUDA events; the CPU queue's clock): warm-up runs, then each
// timed run bracketed by marks; the median is reported.
import { Device } from '../../core/device';
import { elapsedMs, mark, sync } from '../../core/runtime';

export interface Timing {
  medianMs: number;
  minMs: number;
  runs: number;
}

// A run may be async (a training step awaits its statistics): then it is awaited inside its marks.
export async function timeRuns(device: Device, run: (i: number) => void | Promise<void>, warmup: number, iters: number): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await run(i);
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
  return { medianMs: ms[Math.floor(ms.length / 2)], minMs: ms[0], runs: iters };
}
