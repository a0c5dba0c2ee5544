// Process-level runtime calls: waiting for queued work, memory accounting, build information.
import type { NativeBuildInfo, NativeMemoryStats } from '../../binding';
import { native } from './native';

export type MemoryStats = NativeMemoryStats;

// Resolves when all work queued so far, on every device, is done. Rejects with the first error
// queued work raised (a MixtError naming the op), once.
export function sync(): Promise<void> {
  return native().sync();
}

// Live tensors (handles, views included), live bytes, the peak since start (or resetPeak) and the
// number of allocations, per device used in this thread. Exact: it counts what was allocated.
export function memory(): Record<string, MemoryStats> {
  return native().memory();
}

export function resetPeakMemory(): void {
  native().resetPeak();
}

export function buildInfo(): NativeBuildInfo {
  return native().buildInfo();
}
