// Op outputs: a given `out` checked against the expected shape, dtype and device, or a fresh
// tensor. Internal to the ops layer (not exported from the package).
import { checkTensor } from '../core/check';
import { DType } from '../core/dtype';
import { Tensor } from '../core/tensor';

export function outputFor(fn: string, out: Tensor | undefined, like: Tensor, shape: readonly number[] = like.shape, dtype: DType = like.dtype): Tensor {
  if (out === undefined) return Tensor.empty(shape, dtype, like.device);
  checkTensor(fn, 'out', out, { dtype, shape: [...shape], device: like.device });
  return out;
}
