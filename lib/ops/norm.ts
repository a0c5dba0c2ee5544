// RMSNorm and LayerNorm with weights chosen per row by group (modality): weight [G, d].
// Row statistics are f32 (f64 for f64 inputs). Per-head QK-norm: view q as [T * H, headDim] and
// pass the row group ids repeated H times.
import { checkFloat, checkNumber, checkTensor, sameDevice, sameDtype, checkObject } from '../core/check';
import { rangeError, shown } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';

const KIND = { rms: 0, layer: 1 } as const;

interface Checked {
  rows: number;
  groups: number;
}

function checkNormArgs(fn: string, x: Tensor, weight: Tensor, bias: Tensor | null, groupIds: Tensor | null): Checked {
  checkFloat(fn, 'x', x, { ndim: 2 });
  const [rows, d] = x.shape;
  checkTensor(fn, 'weight', weight, { ndim: 2, shape: [null, d] });
  sameDtype(fn, { x, weight });
  const named: Record<string, Tensor> = { x, weight };
  const groups = weight.shape[0];
  if (bias) {
    checkTensor(fn, 'bias', bias, { shape: [groups, d] });
    sameDtype(fn, { x, bias });
    named.bias = bias;
  }
  if (groupIds) {
    checkTensor(fn, 'groupIds', groupIds, { dtype: 'i32', shape: [rows] });
    named.groupIds = groupIds;
  } else if (groups !== 1) {
    throw rangeError(fn, 'groupIds', `group ids (weight has ${groups} groups)`, groupIds);
  }
  sameDevice(fn, named);
  return { rows, groups };
}

const statDtype = (x: Tensor) => (x.dtype === 'f64' ? 'f64' : 'f32');

function forward(fn: string, kind: 'rms' | 'layer', x: Tensor, weight: Tensor, bias: Tensor | null, groupIds: Tensor | null, eps: number) {
  const { rows, groups } = checkNormArgs(fn, x, weight, bias, groupIds);
  checkNumber(fn, 'options.eps', eps, { min: 0 });
  const y = Tensor.empty(x.shape, x.dtype, x.device);
  const mean = kind === 'layer' ? Tensor.empty([rows], statDtype(x), x.device) : null;
  const rstd = Tensor.empty([rows], statDtype(x), x.device);
  native().normForward(KIND[kind], x.handle(), weight.handle(), bias?.handle() ?? null, groupIds?.handle() ?? null, groups, eps, mean?.handle() ?? null, rstd.handle(), y.handle());
  return { y, mean, rstd };
}

function backward(fn: string, kind: 'rms' | 'layer', dy: Tensor, x: Tensor, weight: Tensor, bias: Tensor | null, groupIds: Tensor | null, mean: Tensor | null, rstd: Tensor) {
  const { rows, groups } = checkNormArgs(fn, x, weight, bias, groupIds);
  checkTensor(fn, 'dy', dy, { dtype: x.dtype, shape: [...x.shape], device: x.device });
  checkTensor(fn, 'rstd', rstd, { dtype: statDtype(x), shape: [rows], device: x.device });
  if (kind === 'layer') checkTensor(fn, 'mean', mean, { dtype: statDtype(x), shape: [rows], device: x.device });
  const dx = Tensor.empty(x.shape, x.dtype, x.device);
  const dweight = Tensor.empty(weight.shape, x.dtype, x.device);
  const dbias = kind === 'layer' ? Tensor.empty(weight.shape, x.dtype, x.device) : null;
  native().normBackward(KIND[kind], x.handle(), weight.handle(), bias?.handle() ?? null, groupIds?.handle() ?? null, groups, 0,
    mean?.handle() ?? null, rstd.handle(), dy.handle(), dx.handle(), dweight.handle(), dbias?.handle() ?? null);
  return { dx, dweight, dbias };
}

export function rmsNorm(x: Tensor, weight: Tensor, groupIds: Tensor | null, opts: { eps?: number } = {}): { y: Tensor; rstd: Tensor } {
  opts = checkObject('rmsNorm', 'options', opts, ['eps']) as typeof opts;
  const { y, rstd } = forward('rmsNorm', 'rms', x, weight, null, groupIds, opts.eps ?? 1e-6);
  return { y, rstd };
}

export function rmsNormBackward(dy: Tensor, x: Tensor, weight: Tensor, groupIds: Tensor | null, rstd: Tensor): { dx: Tensor; dweight: Tensor } {
  const { dx, dweight } = backward('rmsNormBackward', 'rms', dy, x, weight, null, groupIds, null, rstd);
  return { dx, dweight };
}

export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, groupIds: Tensor | null, opts: { eps?: number } = {}): { y: Tensor; mean: Tensor; rstd: Tensor } {
  opts = checkObject('layerNorm', 'options', opts, ['eps']) as typeof opts;
  checkTensor('layerNorm', 'bias', bias);
  const { y, mean, rstd } = forward('layerNorm', 'layer', x, weight, bias, groupIds, opts.eps ?? 1e-5);
  return { y, mean: mean!, rstd };
}

export function layerNormBackward(dy: Tensor, x: Tensor, weight: Tensor, groupIds: Tensor | null, mean: Tensor, rstd: Tensor): { dx: Tensor; dweight: Tensor; dbias: Tensor } {
  const { dx, dweight, dbias } = backward('layerNormBackward', 'layer', dy, x, weight, null, groupIds, mean, rstd);
  return { dx, dweight, dbias: dbias! };
}

// SwiGLU on a fused gate|up projection [N, 2F] -> [N, F]: silu(gate) * up.
export function swiglu(gateUp: Tensor): Tensor {
  checkFloat('swiglu', 'gateUp', gateUp, { ndim: 2 });
  if (gateUp.shape[1] % 2) throw rangeError('swiglu', 'gateUp', 'an even number of columns (gate | up)', shown(`shape [${gateUp.shape.join(', ')}]`));
  const h = Tensor.empty([gateUp.shape[0], gateUp.shape[1] / 2], gateUp.dtype, gateUp.device);
  native().swiglu(gateUp.handle(), h.handle());
  return h;
}

export function swigluBackward(dh: Tensor, gateUp: Tensor): Tensor {
  checkFloat('swigluBackward', 'gateUp', gateUp, { ndim: 2 });
  checkTensor('swigluBackward', 'dh', dh, { dtype: gateUp.dtype, shape: [gateUp.shape[0], gateUp.shape[1] / 2], device: gateUp.device });
  const d = Tensor.empty(gateUp.shape, gateUp.dtype, gateUp.device);
  native().swigluBackward(dh.handle(), gateUp.handle(), d.handle());
  return d;
}
