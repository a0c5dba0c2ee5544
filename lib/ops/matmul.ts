// Dense matrix products. a: [..., m, k], b: [k, n] or [batch, k, n]; transposes are free (the
// kernels read either layout). f32 is exact fp32 on every backend; bf16 accumulates in f32.
import { checkBool, checkFloat, checkNumber, checkObject, sameDevice, sameDtype } from '../core/check';
import { rangeError, shown } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';
import { outputFor } from './output';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  // out = alpha * a.b + beta * out (needs `out`)
  beta?: number;
  out?: Tensor;
}

export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  opts = checkObject('matmul', 'options', opts, ['transA', 'transB', 'alpha', 'beta', 'out']) as typeof opts;
  const fn = 'matmul';
  checkFloat(fn, 'a', a, { ndim: [2, 3] });
  checkFloat(fn, 'b', b, { ndim: [2, 3] });
  sameDevice(fn, { a, b });
  sameDtype(fn, { a, b });
  const transA = opts.transA === undefined ? false : checkBool(fn, 'options.transA', opts.transA);
  const transB = opts.transB === undefined ? false : checkBool(fn, 'options.transB', opts.transB);
  const alpha = opts.alpha === undefined ? 1 : checkNumber(fn, 'options.alpha', opts.alpha);
  const beta = opts.beta === undefined ? 0 : checkNumber(fn, 'options.beta', opts.beta);
  if (beta !== 0 && opts.out === undefined) throw rangeError(fn, 'options.beta', '0 unless options.out is given', beta);
  const batchA = a.ndim === 3 ? a.shape[0] : 1;
  const batchB = b.ndim === 3 ? b.shape[0] : 1;
  if (a.ndim === 3 && b.ndim === 3 && batchA !== batchB) {
    throw rangeError(fn, 'b', `batch ${batchA} (as a)`, shown(`shape [${b.shape.join(', ')}]`));
  }
  const batch = Math.max(batchA, batchB);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar, k = transA ? ar : ac;
  const kb = transB ? bc : br, n = transB ? br : bc;
  if (k !== kb) {
    throw rangeError(fn, 'b', `${transB ? 'shape [n, ' + k + ']' : 'shape [' + k + ', n]'} to match a's inner size ${k}`, shown(`shape [${b.shape.join(', ')}]`));
  }
  const shape = a.ndim === 3 || b.ndim === 3 ? [batch, m, n] : [m, n];
  const out = outputFor(fn, opts.out, a, shape);
  native().matmul(a.handle(), b.handle(), out.handle(), batch, m, n, k, transA, transB, alpha, beta);
  return out;
}
