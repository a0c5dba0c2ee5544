// Routing: a stable grouping of rows by group id (modality or expert), computed on the device
// once and reused, plus row gather/scatter through it.
import { checkBool, checkNumber, checkTensor, sameDevice, sameDtype, checkObject } from '../core/check';
import { rangeError, shown } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';
import { outputFor } from './output';

export interface RoutingPlan {
  groups: number;
  counts: Tensor; // i32 [G]
  offsets: Tensor; // i32 [G + 1]
  perm: Tensor; // i32 [N]: grouped row j holds original row perm[j]
  inv: Tensor; // i32 [N]: original row i sits at grouped row inv[i]
  dispose(): void;
}

// Stable: inside a group, rows keep their original order. An id outside [0, groups) fails the
// next read with ERR_BAD_DATA (the row is counted in group 0, never read out of bounds).
export function routingPlan(groupIds: Tensor, groups: number): RoutingPlan {
  const fn = 'routingPlan';
  checkTensor(fn, 'groupIds', groupIds, { dtype: 'i32', ndim: 1 });
  checkNumber(fn, 'groups', groups, { integer: true, min: 1, max: 1 << 20 });
  const dev = groupIds.device, n = groupIds.shape[0];
  const counts = Tensor.empty([groups], 'i32', dev);
  const offsets = Tensor.empty([groups + 1], 'i32', dev);
  const perm = Tensor.empty([n], 'i32', dev);
  const inv = Tensor.empty([n], 'i32', dev);
  native().routingPlan(groupIds.handle(), groups, counts.handle(), offsets.handle(), perm.handle(), inv.handle());
  return {
    groups, counts, offsets, perm, inv,
    dispose() {
      counts.dispose();
      offsets.dispose();
      perm.dispose();
      inv.dispose();
    },
  };
}

const rowSize = (t: Tensor) => t.shape.slice(1).reduce((a, b) => a * b, 1);

// y[r] = x[index[r]] for rows of x (any dtype). Also the token-embedding lookup.
export function gatherRows(x: Tensor, index: Tensor, opts: { out?: Tensor } = {}): Tensor {
  opts = checkObject('gatherRows', 'options', opts, ['out']) as typeof opts;
  const fn = 'gatherRows';
  checkTensor(fn, 'x', x, { ndim: [1, 2, 3, 4, 5, 6, 7, 8] });
  checkTensor(fn, 'index', index, { dtype: 'i32', ndim: 1 });
  sameDevice(fn, { x, index });
  const shape = [index.shape[0], ...x.shape.slice(1)];
  const out = outputFor(fn, opts.out, x, shape);
  native().gatherRows(x.handle(), index.handle(), rowSize(x), out.handle());
  return out;
}

// out[index[r]] = y[r] (or += with accumulate; duplicates then add up). Without `out`, a zeroed
// tensor of `rows` rows is made.
export function scatterRows(y: Tensor, index: Tensor, rows: number, opts: { out?: Tensor; accumulate?: boolean } = {}): Tensor {
  opts = checkObject('scatterRows', 'options', opts, ['out', 'accumulate']) as typeof opts;
  const fn = 'scatterRows';
  checkTensor(fn, 'y', y, { dtype: ['f32', 'f64', 'bf16'], ndim: [1, 2, 3, 4, 5, 6, 7, 8] });
  checkTensor(fn, 'index', index, { dtype: 'i32', ndim: 1 });
  checkNumber(fn, 'rows', rows, { integer: true, min: 0 });
  sameDevice(fn, { y, index });
  if (index.shape[0] !== y.shape[0]) throw rangeError(fn, 'index', `${y.shape[0]} entries (one per row of y)`, shown(`shape [${index.shape.join(', ')}]`));
  const shape = [rows, ...y.shape.slice(1)];
  let out = opts.out;
  if (out) {
    checkTensor(fn, 'options.out', out, { shape, device: y.device });
    sameDtype(fn, { y, 'options.out': out });
  } else {
    out = Tensor.empty(shape, y.dtype, y.device);
    native().fill(out.handle(), 0);
  }
  native().scatterRows(y.handle(), index.handle(), rowSize(y), opts.accumulate === undefined ? false : checkBool(fn, 'options.accumulate', opts.accumulate), out.handle());
  return out;
}
