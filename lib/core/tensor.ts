// Tensor: owned by TypeScript, backed by a native handle. Ops enqueue work and return at once;
// only reads (toArray, item) wait, as Promises. Free with dispose() or `using`; a
// FinalizationRegistry frees forgotten tensors as a safety net only.
import type { NativeHandle } from '../../binding';
import { Device, DeviceSpec, chooseDevice } from './device';
import { DType, HostArray, dtypeBytes, dtypeCode, hostArrayOf } from './dtype';
import { DisposedError, rangeError, typeError } from './errors';
import { native } from './native';

// Node >= 20 defines Symbol.dispose in its main realm; other realms (vm contexts, some test
// runners) may not, and `using` needs it.
if (typeof (Symbol as { dispose?: symbol }).dispose !== 'symbol') {
  Object.defineProperty(Symbol, 'dispose', { value: Symbol.for('Symbol.dispose') });
}

const finalizer = new FinalizationRegistry<NativeHandle>((h) => h.dispose());

export class Tensor {
  #handle: NativeHandle | null;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  // Optional name (parameters carry theirs into errors and checkpoints).
  name?: string;

  // Internal: tensors are made by mixt's creation functions and ops.
  constructor(handle: NativeHandle, shape: readonly number[], dtype: DType, device: Device) {
    const s = resolveShape('Tensor', shape);
    if (typeof dtype !== 'string' || !Object.hasOwn(dtypeBytes, dtype)) throw typeError('Tensor', 'dtype', 'a dtype', dtype);
    const nbytes = s.reduce((a, b) => a * b, 1) * dtypeBytes[dtype];
    // the declared shape and dtype must describe the native storage exactly (kernels are checked
    // natively too; this names the mistake where it is made)
    if (typeof handle !== 'object' || handle === null || handle.nbytes !== nbytes) {
      throw typeError('Tensor', 'handle', `a native handle of ${nbytes} bytes for [${s.join(', ')}] ${dtype}`, handle);
    }
    this.#handle = handle;
    this.shape = Object.freeze(s);
    this.dtype = dtype;
    this.device = device;
    finalizer.register(this, handle, this);
  }

  // True for a real Tensor only (a brand check on the private field: Proxies and look-alikes fail).
  static isTensor(v: unknown): v is Tensor {
    return typeof v === 'object' && v !== null && #handle in v;
  }

  // Methods called on something that is not a Tensor (a Proxy of one, another `this`) throw a
  // TypeError naming the method, never the engine's raw private-field error.
  static #own(t: unknown, method: string): void {
    if (!Tensor.isTensor(t)) throw typeError(`Tensor.${method}`, 'this', 'a Tensor', t);
  }

  static empty(shape: readonly number[], dtype: DType, device: Device): Tensor {
    return new Tensor(native().empty(device.id, dtypeCode[dtype], [...shape]), shape, dtype, device);
  }

  // The native handle; throws DisposedError once disposed. `what` names the caller in the error.
  handle(what = 'tensor'): NativeHandle {
    Tensor.#own(this, 'handle');
    if (!this.#handle) throw new DisposedError(`${what}${this.name ? ` (${this.name})` : ''}`);
    return this.#handle;
  }

  get disposed(): boolean {
    Tensor.#own(this, 'disposed');
    return this.#handle === null;
  }
  get ndim(): number {
    Tensor.#own(this, 'ndim');
    return this.shape.length;
  }
  get numel(): number {
    Tensor.#own(this, 'numel');
    let n = 1;
    for (const d of this.shape) n *= d;
    return n;
  }
  get nbytes(): number {
    return this.numel * dtypeBytes[this.dtype];
  }

  describe(): string {
    Tensor.#own(this, 'describe');
    const state = this.disposed ? ', disposed' : '';
    return `Tensor(${this.name ? this.name + ' ' : ''}[${this.shape.join(', ')}] ${this.dtype} on ${this.device}${state})`;
  }
  toString(): string {
    return this.describe();
  }

  dispose(): void {
    Tensor.#own(this, 'dispose');
    const h = this.#handle;
    if (!h) return;
    this.#handle = null;
    finalizer.unregister(this);
    h.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // A tensor of another shape with the same elements, sharing storage (dispose each view).
  reshape(shape: readonly number[]): Tensor {
    Tensor.#own(this, 'reshape');
    const s = resolveShape('reshape', shape, this.numel);
    return new Tensor(this.handle('reshape').view(s, 0), s, this.dtype, this.device);
  }

  // Rows [start, end) along the first axis, sharing storage.
  slice(start: number, end: number): Tensor {
    Tensor.#own(this, 'slice');
    if (this.ndim === 0) throw rangeError('slice', 'this', 'a tensor with at least one axis', this);
    const n = this.shape[0];
    if (!Number.isInteger(start) || start < 0 || start > n) throw rangeError('slice', 'start', `an integer in [0, ${n}]`, start);
    if (!Number.isInteger(end) || end < start || end > n) throw rangeError('slice', 'end', `an integer in [${start}, ${n}]`, end);
    const rowSize = this.numel / Math.max(1, n);
    const shape = [end - start, ...this.shape.slice(1)];
    return new Tensor(this.handle('slice').view(shape, start * rowSize), shape, this.dtype, this.device);
  }

  // A copy on another device (ordered after pending work on both).
  to(device: DeviceSpec | string): Tensor {
    Tensor.#own(this, 'to');
    const dev = chooseDevice(device, 'Tensor.to').device;
    const h = this.handle('Tensor.to');
    if (dev.isCuda && this.dtype === 'f64') throw typeError('Tensor.to', 'device', 'cpu for an f64 tensor (f64 is CPU-only)', String(dev));
    const out = Tensor.empty(this.shape, this.dtype, dev);
    native().copy(h, out.handle());
    return out;
  }

  clone(): Tensor {
    Tensor.#own(this, 'clone');
    return this.to(this.device);
  }

  // The values, after all queued work that writes this tensor. bf16 reads as float32.
  async toArray(): Promise<HostArray> {
    Tensor.#own(this, 'toArray');
    const buf = await this.handle('toArray').read();
    return hostArrayOf(this.dtype, buf);
  }

  // The single value of a one-element tensor.
  async item(): Promise<number> {
    Tensor.#own(this, 'item');
    if (this.numel !== 1) throw rangeError('item', 'this', 'a tensor with exactly one element', this);
    return (await this.toArray())[0];
  }
}

// The most elements a tensor may have (the native limit, 2^46: 512 TiB of f64), as the product of its
// non-zero sizes (so that no partial product of sizes, such as the rows of an empty last axis, is huge).
export const MAX_ELEMENTS = 2 ** 46;

// Checks a shape argument: an array of at most 8 non-negative integers whose product is at most
// MAX_ELEMENTS. One -1 entry is inferred when `numel` is given (reshape). The array is read once,
// into the copy that is checked and returned (a getter cannot change it between check and use).
export function resolveShape(fn: string, shape: unknown, numel?: number): number[] {
  if (!Array.isArray(shape)) throw typeError(fn, 'shape', 'an array of sizes', shape);
  const length = shape.length;
  if (length > 8) throw rangeError(fn, 'shape', 'at most 8 dimensions', shape);
  const out: number[] = Array.from({ length }, (_, i) => shape[i]);
  let inferAt = -1;
  let known = 1;
  for (let i = 0; i < length; i++) {
    const d = out[i];
    if (numel !== undefined && d === -1 && inferAt < 0) {
      inferAt = i;
      continue;
    }
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw typeError(fn, 'shape', 'non-negative integer sizes', out);
    }
    if (d !== 0) known *= d;
  }
  // each partial product only grows, so `known` (a double) is past the limit exactly when the true one is
  if (known > MAX_ELEMENTS) throw rangeError(fn, 'shape', `at most 2^46 elements in all (counting non-zero sizes)`, out);
  if (out.includes(0)) known = 0;
  if (inferAt >= 0) {
    if (known === 0 || numel! % known !== 0) throw rangeError(fn, 'shape', `a shape with ${numel} elements`, out);
    out[inferAt] = numel! / known;
    known = numel!;
  }
  if (numel !== undefined && known !== numel) throw rangeError(fn, 'shape', `a shape with ${numel} elements`, out);
  return out;
}
