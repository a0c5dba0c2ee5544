// Is the event loop free while some work runs? Judged by quantities of the same window, which a busy
// machine scales alike, so that load does not decide the verdict:
// - utilization (performance.eventLoopUtilization): the share of the window the loop spent running
//   JavaScript. Work on another thread leaves it near 0; a blocking op keeps it near 1 (time the OS
//   gives to other processes while the loop waits counts as idle, so a CPU hog does not raise it);
// - the longest gap between ticks of a 2 ms timer, reported for diagnosis only: beside a CPU hog at
//   a load of 25 on 2 cores the OS alone leaves this process unscheduled for up to a second, so a gap
//   says little about the code (measured: 0.25-1 s gaps in 5-10 s windows of non-blocking work).
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

// The verdict: blocked when the loop was busy running JavaScript for most of the window (measured:
// 0.01-0.2 for queued matmuls beside a CPU hog, near 1 for a blocking op of the same length).
export function loopBlocked(p: LoopProbe): boolean {
  return p.utilization > 0.5;
}

// The probe in words, for a failed expectation's message.
export const describeProbe = (p: LoopProbe): string =>
  `utilization ${p.utilization.toFixed(3)} over ${p.ms.toFixed(0)} ms, longest gap ${p.maxGapMs.toFixed(0)} ms, ${p.ticks} ticks; blocked: ${loopBlocked(p)}`;

// A deliberately blocking op of a given length: a synchronous busy loop on the JS thread (what a
// compute op that forgot to queue its work would do).
export async function blockingOp(ms: number): Promise<void> {
  const t0 = performance.now();
  let x = 0;
  while (performance.now() - t0 < ms) x += Math.sqrt(x + 1);
  if (x < 0) throw new Error('unreachable');
}
