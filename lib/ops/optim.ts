// Fused AdamW and global gradient-norm clipping that never syncs the host: the squared norm and
// the clip coefficient stay on the device and the AdamW kernel reads the coefficient.
import { checkFloat, checkNumber, checkObject, checkTensor } from '../core/check';
import { rangeError } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';
import { fill_ } from './elementwise';

export interface AdamWStepOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number; // 1-based, for bias correction
  gradScale?: Tensor; // f32 [1]: gradients are multiplied by it (clipping)
  computeCopy?: Tensor; // written with the updated values (bf16 compute weights)
}

export function adamwStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, o: AdamWStepOptions): void {
  const fn = 'adamwStep';
  checkTensor(fn, 'param', param);
  checkTensor(fn, 'param', param, { dtype: param.device.isCuda ? 'f32' : ['f32', 'f64'] });
  o = checkObject(fn, 'options', o, ['lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'step', 'gradScale', 'computeCopy']) as unknown as AdamWStepOptions;
  const like = { shape: [...param.shape], device: param.device };
  checkFloat(fn, 'grad', grad, like);
  checkTensor(fn, 'm', m, { ...like, dtype: param.dtype });
  checkTensor(fn, 'v', v, { ...like, dtype: param.dtype });
  checkNumber(fn, 'options.lr', o.lr, { min: 0 });
  checkNumber(fn, 'options.beta1', o.beta1, { min: 0, max: 1 });
  checkNumber(fn, 'options.beta2', o.beta2, { min: 0, max: 1 });
  checkNumber(fn, 'options.eps', o.eps, { min: 0 });
  checkNumber(fn, 'options.weightDecay', o.weightDecay, { min: 0 });
  checkNumber(fn, 'options.step', o.step, { integer: true, min: 1 });
  if (o.gradScale !== undefined) checkTensor(fn, 'options.gradScale', o.gradScale, { dtype: 'f32', shape: [1], device: param.device });
  if (o.computeCopy !== undefined) checkFloat(fn, 'options.computeCopy', o.computeCopy, like);
  native().adamw(param.handle(), grad.handle(), m.handle(), v.handle(), o.lr, o.beta1, o.beta2, o.eps, o.weightDecay, o.step,
    o.gradScale?.handle() ?? null, o.computeCopy?.handle() ?? null);
}

// sum over tensors of sum(g^2), as a device scalar [1] (f32; f64 when the first tensor is f64 on the CPU).
export function gradNormSquared(grads: Tensor[], opts: { out?: Tensor } = {}): Tensor {
  opts = checkObject('gradNormSquared', 'options', opts, ['out']) as typeof opts;
  const fn = 'gradNormSquared';
  if (!Array.isArray(grads) || grads.length === 0) throw rangeError(fn, 'grads', 'a non-empty array of tensors', grads);
  grads = Array.from(grads); // read once: the checked tensors are the ones used
  grads.forEach((g, i) => checkFloat(fn, `grads[${i}]`, g, { device: grads[0].device }));
  const dtype = grads[0].dtype === 'f64' ? 'f64' : 'f32';
  if (opts.out !== undefined) checkTensor(fn, 'options.out', opts.out, { dtype, shape: [1], device: grads[0].device });
  const out = opts.out ?? Tensor.empty([1], dtype, grads[0].device);
  fill_(out, 0);
  for (const g of grads) native().sumSquaresInto(g.handle(), out.handle());
  return out;
}

// min(1, maxNorm / (sqrt(normSquared) + 1e-6)), on the device; 0 when the norm is not finite.
export function clipCoefficient(normSquared: Tensor, maxNorm: number): Tensor {
  checkTensor('clipCoefficient', 'normSquared', normSquared, { dtype: ['f32', 'f64'], shape: [1] });
  checkNumber('clipCoefficient', 'maxNorm', maxNorm, { min: 0, minExclusive: true });
  const out = Tensor.empty([1], 'f32', normSquared.device);
  native().clipCoefficient(normSquared.handle(), maxNorm, out.handle());
  return out;
}
