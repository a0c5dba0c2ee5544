// Global attention over packed tokens [T, H, D] with multimodal masks, GQA, saved log-sum-exp;
// RoPE; doc ids from cu_seqlens. Visibility: same document (docIds), and, when causal,
// positions[j] <= positions[i] or both in the same image span (spanIds >= 0, bidirectional).
import { checkBool, checkFloat, checkNumber, checkTensor, sameDevice, sameDtype, checkObject } from '../core/check';
import { rangeError, shown, typeError } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';

export interface AttentionMask {
  causal: boolean;
  docIds?: Tensor; // i32 [T], non-decreasing
  spanIds?: Tensor; // i32 [T], -1 outside spans
  positions?: Tensor; // i32 [T], the causal order (default: token index)
}

const statDtype = (t: Tensor) => (t.dtype === 'f64' ? 'f64' : 'f32');

// Checks q, k, v and the mask; returns the scale and the mask as read once (the copy is what is used).
function checkQKV(fn: string, q: Tensor, k: Tensor, v: Tensor, given: AttentionMask, scale: number | undefined): { scale: number; mask: AttentionMask } {
  checkFloat(fn, 'q', q, { ndim: 3 });
  const [T, Hq, D] = q.shape;
  checkFloat(fn, 'k', k, { ndim: 3, shape: [T, null, D] });
  checkFloat(fn, 'v', v, { shape: [...k.shape] });
  sameDtype(fn, { q, k, v });
  sameDevice(fn, { q, k, v });
  if (Hq % k.shape[1] !== 0) throw rangeError(fn, 'k', `a head count dividing ${Hq} (GQA)`, shown(`shape [${k.shape.join(', ')}]`));
  if (q.device.isCuda && D !== 64 && D !== 128 && D > 128) throw rangeError(fn, 'q', 'head dim <= 128 on CUDA', shown(`head dim ${D}`));
  if (typeof given !== 'object' || given === null) throw typeError(fn, 'mask', 'an AttentionMask object', given);
  const mask = checkObject(fn, 'mask', given, ['causal', 'docIds', 'spanIds', 'positions']) as unknown as AttentionMask;
  checkBool(fn, 'mask.causal', mask.causal);
  for (const key of ['docIds', 'spanIds', 'positions'] as const) {
    const t = mask[key];
    if (t !== undefined) checkTensor(fn, `mask.${key}`, t, { dtype: 'i32', shape: [T], device: q.device });
  }
  return { scale: scale === undefined ? 1 / Math.sqrt(D) : checkNumber(fn, 'options.scale', scale), mask };
}

export function attention(q: Tensor, k: Tensor, v: Tensor, mask: AttentionMask, opts: { scale?: number } = {}): { out: Tensor; lse: Tensor } {
  opts = checkObject('attention', 'options', opts, ['scale']) as typeof opts;
  const { scale, mask: m } = checkQKV('attention', q, k, v, mask, opts.scale);
  mask = m;
  const [T, Hq] = q.shape;
  const out = Tensor.empty(q.shape, q.dtype, q.device);
  const lse = Tensor.empty([Hq, T], statDtype(q), q.device);
  native().attentionForward(q.handle(), k.handle(), v.handle(), mask.docIds?.handle() ?? null, mask.spanIds?.handle() ?? null,
    mask.positions?.handle() ?? null, mask.causal, scale, out.handle(), lse.handle());
  return { out, lse };
}

export function attentionBackward(
  q: Tensor, k: Tensor, v: Tensor, out: Tensor, dOut: Tensor, lse: Tensor, mask: AttentionMask, opts: { scale?: number } = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  opts = checkObject('attentionBackward', 'options', opts, ['scale']) as typeof opts;
  const fn = 'attentionBackward';
  const { scale, mask: m } = checkQKV(fn, q, k, v, mask, opts.scale);
  mask = m;
  checkTensor(fn, 'out', out, { dtype: q.dtype, shape: [...q.shape], device: q.device });
  checkTensor(fn, 'dOut', dOut, { dtype: q.dtype, shape: [...q.shape], device: q.device });
  checkTensor(fn, 'lse', lse, { dtype: statDtype(q), shape: [q.shape[1], q.shape[0]], device: q.device });
  const dq = Tensor.empty(q.shape, q.dtype, q.device), dk = Tensor.empty(k.shape, k.dtype, k.device), dv = Tensor.empty(v.shape, v.dtype, v.device);
  native().attentionBackward(q.handle(), k.handle(), v.handle(), mask.docIds?.handle() ?? null, mask.spanIds?.handle() ?? null,
    mask.positions?.handle() ?? null, mask.causal, scale, out.handle(), dOut.handle(), lse.handle(), dq.handle(), dk.handle(), dv.handle());
  return { dq, dk, dv };
}

// Rotary embedding ("rotate half": pairs (c, c + D/2)); inverse = the backward.
export function rope(x: Tensor, positions: Tensor, opts: { theta?: number; inverse?: boolean } = {}): Tensor {
  opts = checkObject('rope', 'options', opts, ['theta', 'inverse']) as typeof opts;
  const fn = 'rope';
  checkFloat(fn, 'x', x, { ndim: 3 });
  if (x.shape[2] % 2) throw rangeError(fn, 'x', 'an even head dim', shown(`shape [${x.shape.join(', ')}]`));
  checkTensor(fn, 'positions', positions, { dtype: 'i32', shape: [x.shape[0]], device: x.device });
  const theta = checkNumber(fn, 'options.theta', opts.theta ?? 10000, { min: 1 });
  const out = Tensor.empty(x.shape, x.dtype, x.device);
  native().rope(x.handle(), positions.handle(), theta, opts.inverse === undefined ? false : checkBool(fn, 'options.inverse', opts.inverse), out.handle());
  return out;
}

// Document id of each of T tokens from cu_seqlens (i32 [docs + 1], 0 ... T).
export function segmentIds(cuSeqlens: Tensor, T: number): Tensor {
  checkTensor('segmentIds', 'cuSeqlens', cuSeqlens, { dtype: 'i32', ndim: 1 });
  checkNumber('segmentIds', 'T', T, { integer: true, min: 0 });
  if (cuSeqlens.shape[0] < 1) throw rangeError('segmentIds', 'cuSeqlens', 'at least one entry', cuSeqlens);
  const out = Tensor.empty([T], 'i32', cuSeqlens.device);
  native().segmentIds(cuSeqlens.handle(), out.handle());
  return out;
}
