// Is the event loop free while some work runs? Judged by quantities of the same window, which a busy
// machine scales alike, so that load does not decide the verdict:
// - utilization (performance.eventLoopUtilization): the share of the window the loop spent running
//   JavaScript. Work on another thread leaves it near 0; a blocking op keeps it near 1 (time the OS
//   gives to other processes while the loop waits counts as idle, so a CPU hog does not raise it);
// - the longest gap between ticks of a 2 ms timer, against the window: a blocking op's gap is all of
//   it; work that yields leaves gaps of scheduling noise only.
import { performance } from 'perf_hooks';

export interface LoopProbe {
  ms: number; // the window: the work's duration
  utilization: number;
  maxGapMs: number;
  ticks: number;
}

export async function probeLoop(work: () => Promise<unknown>): Promise<LoopProbe> {
  let ticks = 0, last = performance.now(), maxGapMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    ticks++;
  }, 2);
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  const { utilization } = performance.eventLoopUtilization(elu0);
  clearInterval(timer);
  maxGapMs = Math.max(maxGapMs, performance.now() - last);
  return { ms, utilization, maxGapMs, ticks };
}

// The verdict: blocked when the loop was busy most of the window or stalled for most of it.
export function loopBlocked(p: LoopProbe): boolean {
  return p.utilization > 0.5 || p.maxGapMs > 0.5 * p.ms;
}

// A deliberately blocking op of a given length: a synchronous busy loop on the JS thread (what a
// compute op that forgot to queue its work would do).
export async function blockingOp(ms: number): Promise<void> {
  const t0 = performance.now();
  let x = 0;
  while (performance.now() - t0 < ms) x += Math.sqrt(x + 1);
  if (x < 0) throw new Error('unreachable');
}
