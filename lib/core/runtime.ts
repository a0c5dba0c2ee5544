// Process-level runtime calls: waiting for queued work, memory accounting, build information.
import type { NativeBuildInfo, NativeMark, NativeMemoryStats } from '../../binding';
import { Device, DeviceSpec, chooseDevice } from './device';
import { rangeError } from './errors';
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

// A device's memory budget, for the whole process (all worker threads share its memory): every
// tensor's storage and every host staging buffer is reserved from it before it is allocated, and an
// allocation past it throws ERR_OOM (ERR_CUDA_OOM on a CUDA device) instead of reserving memory the
// machine does not have. `limit` 0 means none. The CPU's default is 80% of the physical memory (or of
// the container's limit), MIXT_HOST_MEMORY_LIMIT overrides it; MIXT_CUDA_MEMORY_LIMIT sets one for
// every CUDA device (by default the device's own memory is the limit). Sizes take K/M/G/T suffixes.
export interface MemoryBudget {
  limit: number;
  used: number;
}

export function memoryLimit(device: DeviceSpec | string = 'cpu'): MemoryBudget {
  return native().memoryLimit(chooseDevice(device, 'memoryLimit').device.id);
}

export function setMemoryLimit(bytes: number, device: DeviceSpec | string = 'cpu'): void {
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0)
    throw rangeError('setMemoryLimit', 'bytes', 'a non-negative integer (0: no limit)', bytes);
  native().setMemoryLimit(chooseDevice(device, 'setMemoryLimit').device.id, bytes);
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

// Resolves on the next turn of the event loop (after pending I/O callbacks): long synchronous
// sequences of enqueueing or host work yield here so that the loop is never held for long.
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
