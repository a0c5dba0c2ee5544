// Process-level runtime calls: waiting for queued work, memory accounting, build information.
import type { NativeBuildInfo, NativeMark, NativeMemoryStats } from '../../binding';
import { Device } from './device';
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

// Device-side timing: marks in a device's stream order; elapsed() waits for both.
export interface Mark {
  readonly device: Device;
  readonly native: NativeMark;
}

export function mark(device: Device): Mark {
  return { device, native: native().mark(device.id) };
}

export async function elapsedMs(from: Mark, to: Mark): Promise<number> {
  if (from.device !== to.device) throw new RangeError('elapsedMs: marks of different devices');
  return native().elapsed(from.native, to.native);
}
