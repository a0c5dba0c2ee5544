// Elementwise ops. Binary ops broadcast b over a's leading axes when b's shape is a suffix of a's
// (bias rows, per-channel scales). Every op can write into a given `out` of the right shape.
import { checkFloat, checkNumber, checkOneOf, checkTensor, sameDevice, sameDtype } from '../core/check';
import { DType, DTYPES } from '../core/dtype';
import { rangeError, shown, typeError } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';
import { outputFor } from './output';

const BINARY = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5 } as const;
const UNARY = {
  neg: 0, exp: 1, log: 2, sqrt: 3, rsqrt: 4, abs: 5, relu: 6, silu: 7,
  gelu: 8, tanh: 9, sigmoid: 10, square: 11, reciprocal: 12, softplus: 13, step: 14,
} as const;

function binary(fn: keyof typeof BINARY, a: Tensor, b: Tensor, out?: Tensor): Tensor {
  checkFloat(fn, 'a', a);
  checkFloat(fn, 'b', b);
  sameDevice(fn, { a, b });
  sameDtype(fn, { a, b });
  const suffix = a.shape.slice(a.ndim - b.ndim);
  if (b.ndim > a.ndim || suffix.some((d, i) => d !== b.shape[i])) {
    throw rangeError(fn, 'b', `shape [${a.shape.join(', ')}] or a suffix of it`, shown(`shape [${b.shape.join(', ')}]`));
  }
  if (b.numel === 0 && a.numel !== 0) throw rangeError(fn, 'b', 'a non-empty tensor', b);
  const o = outputFor(fn, out, a);
  if (a.numel > 0) native().binary(BINARY[fn], a.handle(), b.handle(), o.handle());
  return o;
}

export const add = (a: Tensor, b: Tensor, out?: Tensor): Tensor => binary('add', a, b, out);
export const sub = (a: Tensor, b: Tensor, out?: Tensor): Tensor => binary('sub', a, b, out);
export const mul = (a: Tensor, b: Tensor, out?: Tensor): Tensor => binary('mul', a, b, out);
export const div = (a: Tensor, b: Tensor, out?: Tensor): Tensor => binary('div', a, b, out);
export const maximum = (a: Tensor, b: Tensor, out?: Tensor): Tensor => binary('maximum', a, b, out);
export const minimum = (a: Tensor, b: Tensor, out?: Tensor): Tensor => binary('minimum', a, b, out);

export type UnaryName = keyof typeof UNARY;
export const UNARY_OPS = Object.keys(UNARY) as UnaryName[];

export function unary(op: UnaryName, x: Tensor, out?: Tensor): Tensor {
  checkOneOf('unary', 'op', op, UNARY_OPS);
  checkFloat(op, 'x', x);
  const o = outputFor(op, out, x);
  native().unary(UNARY[op], x.handle(), o.handle());
  return o;
}

export const neg = (x: Tensor, out?: Tensor): Tensor => unary('neg', x, out);
export const exp = (x: Tensor, out?: Tensor): Tensor => unary('exp', x, out);
export const log = (x: Tensor, out?: Tensor): Tensor => unary('log', x, out);
export const sqrt = (x: Tensor, out?: Tensor): Tensor => unary('sqrt', x, out);
export const rsqrt = (x: Tensor, out?: Tensor): Tensor => unary('rsqrt', x, out);
export const abs = (x: Tensor, out?: Tensor): Tensor => unary('abs', x, out);
export const relu = (x: Tensor, out?: Tensor): Tensor => unary('relu', x, out);
export const silu = (x: Tensor, out?: Tensor): Tensor => unary('silu', x, out);
export const gelu = (x: Tensor, out?: Tensor): Tensor => unary('gelu', x, out);
export const tanh = (x: Tensor, out?: Tensor): Tensor => unary('tanh', x, out);
export const sigmoid = (x: Tensor, out?: Tensor): Tensor => unary('sigmoid', x, out);
export const square = (x: Tensor, out?: Tensor): Tensor => unary('square', x, out);
export const reciprocal = (x: Tensor, out?: Tensor): Tensor => unary('reciprocal', x, out);
export const softplus = (x: Tensor, out?: Tensor): Tensor => unary('softplus', x, out);
// 1 where x > 0, else 0
export const step = (x: Tensor, out?: Tensor): Tensor => unary('step', x, out);

// out = alpha * x + beta * y
export function axpby(alpha: number, x: Tensor, beta: number, y: Tensor, out?: Tensor): Tensor {
  const fn = 'axpby';
  checkNumber(fn, 'alpha', alpha);
  checkNumber(fn, 'beta', beta);
  checkFloat(fn, 'x', x);
  checkFloat(fn, 'y', y, { shape: [...x.shape] });
  sameDevice(fn, { x, y });
  sameDtype(fn, { x, y });
  const o = outputFor(fn, out, x);
  native().axpby(alpha, x.handle(), beta, y.handle(), o.handle());
  return o;
}

// out = scale * x + shift
export function scale(x: Tensor, factor: number, shift = 0, out?: Tensor): Tensor {
  checkFloat('scale', 'x', x);
  checkNumber('scale', 'factor', factor);
  checkNumber('scale', 'shift', shift);
  const o = outputFor('scale', out, x);
  native().axpby(factor, x.handle(), shift, null, o.handle());
  return o;
}

// In place: x += alpha * y
export function addScaled_(x: Tensor, alpha: number, y: Tensor): Tensor {
  return axpby(1, x, alpha, y, x);
}

// A copy converted to another dtype (bf16 rounds to nearest even; to i32 truncates).
export function cast(x: Tensor, dtype: DType, out?: Tensor): Tensor {
  checkTensor('cast', 'x', x);
  checkOneOf('cast', 'dtype', dtype, DTYPES);
  if (dtype === 'f64' && x.device.isCuda) throw typeError('cast', 'dtype', 'f32, bf16 or i32 on CUDA', dtype);
  const o = outputFor('cast', out, x, x.shape, dtype);
  native().cast(x.handle(), o.handle());
  return o;
}

// Sets every element to value, in place.
export function fill_(t: Tensor, value: number): Tensor {
  checkTensor('fill_', 't', t);
  checkNumber('fill_', 'value', value);
  native().fill(t.handle(), value);
  return t;
}

// Copies src into dst (same shape and dtype; any devices), in stream order.
export function copy_(dst: Tensor, src: Tensor): Tensor {
  checkTensor('copy_', 'src', src);
  checkTensor('copy_', 'dst', dst, { dtype: src.dtype, shape: [...src.shape] });
  native().copy(src.handle(), dst.handle());
  return dst;
}
