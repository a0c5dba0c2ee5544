// Reductions along one axis (or all elements when axis is omitted).
import { checkBool, checkFloat, checkNumber, checkObject, checkOneOf } from '../core/check';
import { typeError } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';

const REDUCE = { sum: 0, max: 1, min: 2, mean: 3, sumSquares: 4 } as const;
export type ReduceName = keyof typeof REDUCE;

export interface ReduceOptions {
  axis?: number;
  keepDims?: boolean;
}

export function reduce(op: ReduceName, x: Tensor, opts: ReduceOptions = {}): Tensor {
  checkOneOf('reduce', 'op', op, Object.keys(REDUCE) as ReduceName[]);
  opts = checkObject('reduce', 'options', opts, ['axis', 'keepDims']) as typeof opts;
  checkFloat(op, 'x', x);
  const keepDims = opts.keepDims === undefined ? false : checkBool(op, 'options.keepDims', opts.keepDims);
  let axis: number;
  let outer: number, n: number, inner: number;
  let shape: number[];
  if (opts.axis === undefined) {
    axis = -1;
    outer = 1;
    n = x.numel;
    inner = 1;
    shape = keepDims ? x.shape.map(() => 1) : [];
  } else {
    axis = checkNumber(op, 'options.axis', opts.axis, { integer: true, min: -x.ndim, max: x.ndim - 1 });
    if (axis < 0) axis += x.ndim;
    outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    n = x.shape[axis];
    inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    shape = keepDims ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
  }
  const out = Tensor.empty(shape, x.dtype, x.device);
  native().reduce(REDUCE[op], x.handle(), outer, n, inner, out.handle());
  return out;
}

export const sum = (x: Tensor, opts?: ReduceOptions): Tensor => reduce('sum', x, opts);
export const mean = (x: Tensor, opts?: ReduceOptions): Tensor => reduce('mean', x, opts);
export const max = (x: Tensor, opts?: ReduceOptions): Tensor => reduce('max', x, opts);
export const min = (x: Tensor, opts?: ReduceOptions): Tensor => reduce('min', x, opts);
export const sumSquares = (x: Tensor, opts?: ReduceOptions): Tensor => reduce('sumSquares', x, opts);

// Checks, in stream order and without waiting, that x holds no NaN or infinity: if it does, the
// next read or sync() rejects with ERR_NON_FINITE naming `name`.
export function assertFinite(x: Tensor, name?: string): void {
  checkFloat('assertFinite', 'x', x);
  if (name !== undefined && typeof name !== 'string') throw typeError('assertFinite', 'name', 'a string', name);
  native().assertFinite(x.handle(), name ?? x.name ?? 'tensor');
}
