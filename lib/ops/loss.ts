// Cross-entropy for a chunked, fused LM head: the full [N, V] logits never exist at once. Each
// chunk of rows: logits = h_chunk . W^T (matmul), then one fused row kernel (max, log-sum-exp,
// loss, argmax); backward recomputes the chunk's logits, turns them into dlogits in place and
// accumulates dh and dW with two more products.
import { checkFloat, checkNumber, checkTensor, sameDevice, sameDtype, checkObject } from '../core/check';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';
import { fill_ } from './elementwise';
import { matmul } from './matmul';

const statDtype = (t: Tensor) => (t.dtype === 'f64' ? 'f64' : 'f32');

export interface RowLosses {
  loss: Tensor; // f32 [R] (0 where ignored)
  lse: Tensor; // f32 [R]
  correct: Tensor; // i32 [R]: argmax == target
}

export function crossEntropyRows(logits: Tensor, targets: Tensor): RowLosses {
  const fn = 'crossEntropyRows';
  checkFloat(fn, 'logits', logits, { ndim: 2 });
  checkTensor(fn, 'targets', targets, { dtype: 'i32', shape: [logits.shape[0]], device: logits.device });
  const R = logits.shape[0], d = statDtype(logits);
  const loss = Tensor.empty([R], d, logits.device), lse = Tensor.empty([R], d, logits.device), correct = Tensor.empty([R], 'i32', logits.device);
  native().crossEntropyRows(logits.handle(), targets.handle(), loss.handle(), lse.handle(), correct.handle());
  return { loss, lse, correct };
}

// In place: logits <- (softmax(logits) - onehot(target)) * dLoss[r].
export function crossEntropyRowsBackward_(logits: Tensor, targets: Tensor, lse: Tensor, dLoss: Tensor): void {
  const fn = 'crossEntropyRowsBackward_';
  checkFloat(fn, 'logits', logits, { ndim: 2 });
  const R = logits.shape[0], d = statDtype(logits);
  checkTensor(fn, 'targets', targets, { dtype: 'i32', shape: [R], device: logits.device });
  checkTensor(fn, 'lse', lse, { dtype: d, shape: [R], device: logits.device });
  checkTensor(fn, 'dLoss', dLoss, { dtype: d, shape: [R], device: logits.device });
  native().crossEntropyRowsBackward(logits.handle(), targets.handle(), lse.handle(), dLoss.handle());
}

// Rows per chunk so that one chunk's logits stay under ~64 MiB.
function chunkRows(rows: number, vocab: number, bytes: number, given?: number): number {
  if (given !== undefined) return checkNumber('lmHeadCrossEntropy', 'options.chunkRows', given, { integer: true, min: 1 });
  return Math.max(1, Math.min(rows, Math.floor((64 * 2 ** 20) / Math.max(1, vocab * bytes))));
}

function checkHead(fn: string, h: Tensor, w: Tensor, targets: Tensor): void {
  checkFloat(fn, 'h', h, { ndim: 2 });
  checkFloat(fn, 'w', w, { ndim: 2, shape: [null, h.shape[1]] });
  checkTensor(fn, 'targets', targets, { dtype: 'i32', shape: [h.shape[0]] });
  sameDevice(fn, { h, w, targets });
  sameDtype(fn, { h, w });
}

export function lmHeadCrossEntropy(h: Tensor, w: Tensor, targets: Tensor, opts: { chunkRows?: number } = {}): RowLosses {
  opts = checkObject('lmHeadCrossEntropy', 'options', opts, ['chunkRows']) as typeof opts;
  const fn = 'lmHeadCrossEntropy';
  checkHead(fn, h, w, targets);
  const N = h.shape[0], V = w.shape[0], d = statDtype(h);
  const loss = Tensor.empty([N], d, h.device), lse = Tensor.empty([N], d, h.device), correct = Tensor.empty([N], 'i32', h.device);
  const step = chunkRows(N, V, h.nbytes / Math.max(1, h.numel), opts.chunkRows);
  for (let r0 = 0; r0 < N; r0 += step) {
    const r1 = Math.min(N, r0 + step);
    const hc = h.slice(r0, r1), tc = targets.slice(r0, r1);
    const lc = loss.slice(r0, r1), ec = lse.slice(r0, r1), cc = correct.slice(r0, r1);
    const logits = matmul(hc, w, { transB: true });
    native().crossEntropyRows(logits.handle(), tc.handle(), lc.handle(), ec.handle(), cc.handle());
    for (const t of [hc, tc, lc, ec, cc, logits]) t.dispose();
  }
  return { loss, lse, correct };
}

// Gradients of sum(dLoss * loss): dh [N, d] and dw [V, d] (accumulated into opts.dw when given).
export function lmHeadCrossEntropyBackward(
  h: Tensor, w: Tensor, targets: Tensor, lse: Tensor, dLoss: Tensor, opts: { chunkRows?: number; dw?: Tensor } = {},
): { dh: Tensor; dw: Tensor } {
  opts = checkObject('lmHeadCrossEntropyBackward', 'options', opts, ['chunkRows', 'dw']) as typeof opts;
  const fn = 'lmHeadCrossEntropyBackward';
  checkHead(fn, h, w, targets);
  const N = h.shape[0], V = w.shape[0], d = statDtype(h);
  checkTensor(fn, 'lse', lse, { dtype: d, shape: [N], device: h.device });
  checkTensor(fn, 'dLoss', dLoss, { dtype: d, shape: [N], device: h.device });
  let dw = opts.dw;
  if (dw) checkTensor(fn, 'options.dw', dw, { dtype: w.dtype, shape: [...w.shape], device: w.device });
  else dw = fill_(Tensor.empty(w.shape, w.dtype, w.device), 0);
  const dh = Tensor.empty(h.shape, h.dtype, h.device);
  const step = chunkRows(N, V, h.nbytes / Math.max(1, h.numel), opts.chunkRows);
  for (let r0 = 0; r0 < N; r0 += step) {
    const r1 = Math.min(N, r0 + step);
    const hc = h.slice(r0, r1), tc = targets.slice(r0, r1), ec = lse.slice(r0, r1), dc = dLoss.slice(r0, r1), dhc = dh.slice(r0, r1);
    const logits = matmul(hc, w, { transB: true });
    native().crossEntropyRowsBackward(logits.handle(), tc.handle(), ec.handle(), dc.handle());
    matmul(logits, w, { out: dhc });
    matmul(logits, hc, { transA: true, out: dw, beta: 1 });
    for (const t of [hc, tc, ec, dc, dhc, logits]) t.dispose();
  }
  return { dh, dw };
}

// Per-group sums of values (rows with mask 0 left out) and row counts: per-modality reports.
export function groupSum(values: Tensor, groupIds: Tensor, groups: number, opts: { mask?: Tensor } = {}): { sums: Tensor; counts: Tensor } {
  opts = checkObject('groupSum', 'options', opts, ['mask']) as typeof opts;
  const fn = 'groupSum';
  checkTensor(fn, 'values', values, { dtype: ['f32', 'f64'], ndim: 1 });
  checkTensor(fn, 'groupIds', groupIds, { dtype: 'i32', shape: [values.shape[0]], device: values.device });
  checkNumber(fn, 'groups', groups, { integer: true, min: 1 });
  if (opts.mask !== undefined) checkTensor(fn, 'options.mask', opts.mask, { dtype: 'i32', shape: [values.shape[0]], device: values.device });
  const sums = Tensor.empty([groups], values.dtype, values.device), counts = Tensor.empty([groups], values.dtype, values.device);
  native().groupSum(values.handle(), groupIds.handle(), opts.mask?.handle() ?? null, groups, sums.handle(), counts.handle());
  return { sums, counts };
}
