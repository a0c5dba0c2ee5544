// Grouped GEMM over contiguous row groups (offsets i32 [G+1] on the device, read by the kernel:
// no host sync). One launch for all groups; the same op serves modalities and experts.
import { checkFloat, checkNumber, checkTensor, sameDevice, sameDtype, checkObject } from '../core/check';
import { rangeError } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';

export interface GroupedOptions {
  out?: Tensor;
  beta?: number; // out = result + beta * out (needs out)
}

function prepare(fn: string, shape: number[], like: Tensor, opts: GroupedOptions): { out: Tensor; beta: number } {
  const beta = opts.beta === undefined ? 0 : checkNumber(fn, 'options.beta', opts.beta);
  if (beta !== 0 && opts.out === undefined) throw rangeError(fn, 'options.beta', '0 unless options.out is given', beta);
  if (opts.out !== undefined) {
    checkTensor(fn, 'options.out', opts.out, { dtype: like.dtype, shape, device: like.device });
    return { out: opts.out, beta };
  }
  return { out: Tensor.empty(shape, like.dtype, like.device), beta };
}

function checkOffsets(fn: string, offsets: Tensor, groups: number): void {
  checkTensor(fn, 'offsets', offsets, { dtype: 'i32', shape: [groups + 1] });
}

// y[r] = x[r] . w[g(r)]^T: x [N, K], w [G, Nout, K] -> [N, Nout]
export function groupedMatmul(x: Tensor, w: Tensor, offsets: Tensor, opts: GroupedOptions = {}): Tensor {
  opts = checkObject('groupedMatmul', 'options', opts, ['beta', 'out']) as typeof opts;
  const fn = 'groupedMatmul';
  checkFloat(fn, 'x', x, { ndim: 2 });
  checkFloat(fn, 'w', w, { ndim: 3, shape: [null, null, x.shape[1]] });
  checkOffsets(fn, offsets, w.shape[0]);
  sameDevice(fn, { x, w, offsets });
  sameDtype(fn, { x, w });
  const [N, K] = x.shape, [G, O] = w.shape;
  const { out, beta } = prepare(fn, [N, O], x, opts);
  native().groupedGemm(0, x.handle(), w.handle(), offsets.handle(), out.handle(), G, N, O, K, beta);
  return out;
}

// dx[r] = dy[r] . w[g(r)]: dy [N, Nout], w [G, Nout, K] -> [N, K]
export function groupedMatmulDX(dy: Tensor, w: Tensor, offsets: Tensor, opts: GroupedOptions = {}): Tensor {
  opts = checkObject('groupedMatmulDX', 'options', opts, ['beta', 'out']) as typeof opts;
  const fn = 'groupedMatmulDX';
  checkFloat(fn, 'dy', dy, { ndim: 2 });
  checkFloat(fn, 'w', w, { ndim: 3, shape: [null, dy.shape[1], null] });
  checkOffsets(fn, offsets, w.shape[0]);
  sameDevice(fn, { dy, w, offsets });
  sameDtype(fn, { dy, w });
  const [N, O] = dy.shape, [G, , K] = w.shape;
  const { out, beta } = prepare(fn, [N, K], dy, opts);
  native().groupedGemm(1, dy.handle(), w.handle(), offsets.handle(), out.handle(), G, N, O, K, beta);
  return out;
}

// dw[g] = dy[rows of g]^T . x[rows of g]: dy [N, Nout], x [N, K] -> [G, Nout, K]
export function groupedMatmulDW(dy: Tensor, x: Tensor, offsets: Tensor, opts: GroupedOptions = {}): Tensor {
  opts = checkObject('groupedMatmulDW', 'options', opts, ['beta', 'out']) as typeof opts;
  const fn = 'groupedMatmulDW';
  checkFloat(fn, 'dy', dy, { ndim: 2 });
  checkFloat(fn, 'x', x, { ndim: 2, shape: [dy.shape[0], null] });
  checkTensor(fn, 'offsets', offsets, { dtype: 'i32', ndim: 1 });
  if (offsets.shape[0] < 2) throw rangeError(fn, 'offsets', 'at least 2 entries (G + 1)', offsets);
  sameDevice(fn, { dy, x, offsets });
  sameDtype(fn, { dy, x });
  const G = offsets.shape[0] - 1, [N, O] = dy.shape, K = x.shape[1];
  const { out, beta } = prepare(fn, [G, O, K], dy, opts);
  native().groupedGemm(2, dy.handle(), x.handle(), offsets.handle(), out.handle(), G, N, O, K, beta);
  return out;
}
