// Making tensors: from host data, filled, random.
import { checkNumber, checkObject, checkOneOf } from '../core/check';
import { Device, DeviceSpec, chooseDevice, defaultDevice } from '../core/device';
import { DType, DTYPES, dtypeCode, toBf16Words } from '../core/dtype';
import { typeError } from '../core/errors';
import { native } from '../core/native';
import { Generator, defaultGenerator, splitU64 } from '../core/random';
import { Tensor, resolveShape } from '../core/tensor';

export interface TensorOptions {
  dtype?: DType;
  device?: DeviceSpec | string;
}

interface Resolved {
  dtype: DType;
  device: Device;
}

function resolve(fn: string, opts: unknown, fallback: DType): Resolved {
  const o = checkObject(fn, 'options', opts);
  const dtype = o.dtype === undefined ? fallback : checkOneOf(fn, 'options.dtype', o.dtype, DTYPES);
  const device = o.device === undefined ? defaultDevice() : chooseDevice(o.device as DeviceSpec, fn).device;
  if (dtype === 'f64' && device.isCuda) throw typeError(fn, 'options.dtype', 'f32, bf16 or i32 on CUDA (f64 is CPU-only)', dtype);
  return { dtype, device };
}

type Data = Float32Array | Float64Array | Int32Array | Uint16Array | number[];

// A tensor with a copy of `data`. dtype defaults from the array type (Float64Array -> f64,
// Int32Array -> i32, else f32); bf16 takes numbers and rounds them to nearest even.
// Synchronous by design: the bytes are copied before it returns, so the caller may reuse or change
// the array at once (a copy deferred to another thread would race with that). The cost on the JS
// thread is one memcpy into fresh memory (about 0.1 s per 256 MiB where memory bandwidth is a few
// GB/s): feed large data in batches.
export function tensor(data: Data, shape?: readonly number[], opts?: TensorOptions): Tensor {
  opts = checkObject('tensor', 'options', opts, ['dtype', 'device']) as typeof opts;
  const fn = 'tensor';
  const isArr = Array.isArray(data);
  if (!isArr && !(data instanceof Float32Array || data instanceof Float64Array || data instanceof Int32Array || data instanceof Uint16Array)) {
    throw typeError(fn, 'data', 'a Float32Array, Float64Array, Int32Array or number[]', data);
  }
  if (isArr && !(data as number[]).every((v) => typeof v === 'number')) throw typeError(fn, 'data', 'an array of numbers', data);
  const fallback: DType = data instanceof Float64Array ? 'f64' : data instanceof Int32Array ? 'i32' : 'f32';
  const { dtype, device } = resolve(fn, opts, fallback);
  const s = shape === undefined ? [data.length] : resolveShape(fn, shape);
  const numel = s.reduce((a, b) => a * b, 1);
  if (numel !== data.length) throw typeError(fn, 'shape', `a shape with ${data.length} elements`, s);
  let bytes: ArrayBufferView;
  switch (dtype) {
    case 'f32':
      bytes = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
      break;
    case 'f64':
      bytes = data instanceof Float64Array ? data : Float64Array.from(data as ArrayLike<number>);
      break;
    case 'i32':
      if (!(data instanceof Int32Array) && !Array.from(data as ArrayLike<number>).every((v) => Number.isInteger(v) && v >= -2147483648 && v <= 2147483647)) {
        throw typeError(fn, 'data', '32-bit integers for dtype i32', data);
      }
      bytes = data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
      break;
    case 'bf16':
      bytes = data instanceof Uint16Array ? data : toBf16Words(data as ArrayLike<number>);
      break;
  }
  return new Tensor(native().fromBuffer(device.id, dtypeCode[dtype], s, bytes), s, dtype, device);
}

// Uninitialised contents: only for outputs that are fully written before they are read.
export function empty(shape: readonly number[], opts?: TensorOptions): Tensor {
  opts = checkObject('empty', 'options', opts, ['dtype', 'device']) as typeof opts;
  const { dtype, device } = resolve('empty', opts, 'f32');
  return Tensor.empty(resolveShape('empty', shape), dtype, device);
}

function filled(fn: string, shape: readonly number[], value: number, opts?: TensorOptions): Tensor {
  opts = checkObject(fn, 'options', opts, ['dtype', 'device']) as typeof opts;
  // any number, infinities and NaN included (masks, sentinels)
  if (typeof value !== 'number') throw typeError(fn, 'value', 'a number', value);
  const v = value;
  const { dtype, device } = resolve(fn, opts, 'f32');
  const t = Tensor.empty(resolveShape(fn, shape), dtype, device);
  native().fill(t.handle(), v);
  return t;
}

export const full = (shape: readonly number[], value: number, opts?: TensorOptions): Tensor => filled('full', shape, value, opts);
export const zeros = (shape: readonly number[], opts?: TensorOptions): Tensor => filled('zeros', shape, 0, opts);
export const ones = (shape: readonly number[], opts?: TensorOptions): Tensor => filled('ones', shape, 1, opts);

export interface RandomOptions extends TensorOptions {
  generator?: Generator;
}

function randomFill(fn: string, shape: readonly number[], opts: RandomOptions | undefined, normal: boolean, a: number, b: number): Tensor {
  const { dtype, device } = resolve(fn, opts, 'f32');
  if (dtype === 'i32') throw typeError(fn, 'options.dtype', 'a float dtype', dtype);
  const gen = opts?.generator ?? defaultGenerator();
  if (!(gen instanceof Generator)) throw typeError(fn, 'options.generator', 'a Generator', gen);
  const s = resolveShape(fn, shape);
  const t = Tensor.empty(s, dtype, device);
  const [sl, sh] = splitU64(gen.seed);
  const [ol, oh] = splitU64(gen.take(t.numel));
  native().random(t.handle(), sl, sh, ol, oh, normal, a, b);
  return t;
}

// Normal values (mean, std) from the generator (default: the global one, see manualSeed).
export function randn(shape: readonly number[], opts?: RandomOptions & { mean?: number; std?: number }): Tensor {
  opts = checkObject('randn', 'options', opts, ['dtype', 'device', 'generator', 'mean', 'std']) as typeof opts;
  const mean = checkNumber('randn', 'options.mean', opts?.mean ?? 0);
  const std = checkNumber('randn', 'options.std', opts?.std ?? 1, { min: 0 });
  return randomFill('randn', shape, opts, true, mean, std);
}

// Uniform values in [low, high).
export function rand(shape: readonly number[], opts?: RandomOptions & { low?: number; high?: number }): Tensor {
  opts = checkObject('rand', 'options', opts, ['dtype', 'device', 'generator', 'low', 'high']) as typeof opts;
  const low = checkNumber('rand', 'options.low', opts?.low ?? 0);
  const high = checkNumber('rand', 'options.high', opts?.high ?? 1);
  if (high < low) throw typeError('rand', 'options.high', `a number >= low (${low})`, high);
  return randomFill('rand', shape, opts, false, low, high);
}
