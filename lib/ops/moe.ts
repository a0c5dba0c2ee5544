// Depth and expert routing ops: exact top-k per row (Mixture-of-Depths over a sequence; expert
// choice over the tokens of an expert), token-choice router gates and their gradient, per-row
// gate scaling, and expert-dispatch slots (capacity, dropped and no-op assignments = -1).
import { checkBool, checkFloat, checkNumber, checkObject, checkOneOf, checkTensor, sameDevice } from '../core/check';
import { rangeError, typeError } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';

const statDtype = (t: Tensor) => (t.dtype === 'f64' ? 'f64' : 'f32');

// f32 scores (f64 too on the CPU), 2-D
function checkScores(fn: string, scores: unknown, arg = 'scores'): Tensor {
  const t = checkTensor(fn, arg, scores, { ndim: 2 });
  return checkTensor(fn, arg, t, { dtype: t.device.isCuda ? 'f32' : ['f32', 'f64'] });
}

// The k largest of each row of scores [R, S] (exactly k, ties to the lower index), as ascending
// column indices [R, k]; `flat` gives r * S + c (row-major positions, e.g. token indices of a
// packed batch).
export function topkRows(scores: Tensor, k: number, opts: { flat?: boolean } = {}): Tensor {
  opts = checkObject('topkRows', 'options', opts, ['flat']) as typeof opts;
  const fn = 'topkRows';
  checkScores(fn, scores);
  const [R, S] = scores.shape;
  checkNumber(fn, 'k', k, { integer: true, min: 1, max: Math.max(1, S) });
  const out = Tensor.empty([R, k], 'i32', scores.device);
  if (R > 0) native().topkRows(scores.handle(), R, S, S, 1, k, opts.flat === undefined ? false : checkBool('topkRows', 'options.flat', opts.flat), out.handle());
  return out;
}

// The k largest of each column of scores [T, E], as ascending row indices [E, k] (expert choice:
// each expert picks its k tokens).
export function topkColumns(scores: Tensor, k: number): Tensor {
  const fn = 'topkColumns';
  checkScores(fn, scores);
  const [T, E] = scores.shape;
  checkNumber(fn, 'k', k, { integer: true, min: 1, max: Math.max(1, T) });
  const out = Tensor.empty([E, k], 'i32', scores.device);
  if (E > 0) native().topkRows(scores.handle(), E, T, 1, E, k, false, out.handle());
  return out;
}

export type GateName = 'softmax' | 'sigmoid';
const GATE = { softmax: 0, sigmoid: 1 } as const;

export interface RouterOptions {
  gate?: GateName;
  renormalize?: boolean;
}

export interface RouterChoice {
  probs: Tensor; // [T, E]
  lse: Tensor; // [T] log-sum-exp of the logits (z-loss)
  experts: Tensor; // i32 [T, k]
  gates: Tensor; // [T, k]
}

function routerArgs(fn: string, logits: Tensor, k: number, o: RouterOptions) {
  checkScores(fn, logits, 'logits');
  checkNumber(fn, 'k', k, { integer: true, min: 1, max: logits.shape[1] });
  checkObject(fn, 'options', o);
  const gate = checkOneOf(fn, 'options.gate', o.gate ?? 'softmax', ['softmax', 'sigmoid'] as const);
  const renorm = o.renormalize === undefined ? false : checkBool(fn, 'options.renormalize', o.renormalize);
  return { gate, renorm };
}

// Token-choice routing: each token's top-k experts by gate probability.
export function routerTopk(logits: Tensor, k: number, opts: RouterOptions = {}): RouterChoice {
  opts = checkObject('routerTopk', 'options', opts, ['gate', 'renormalize']) as typeof opts;
  const { gate, renorm } = routerArgs('routerTopk', logits, k, opts);
  const [T, E] = logits.shape, d = statDtype(logits), dev = logits.device;
  const probs = Tensor.empty([T, E], d, dev), lse = Tensor.empty([T], d, dev);
  const experts = Tensor.empty([T, k], 'i32', dev), gates = Tensor.empty([T, k], d, dev);
  native().routerTopk(logits.handle(), k, GATE[gate], renorm, probs.handle(), lse.handle(), experts.handle(), gates.handle());
  return { probs, lse, experts, gates };
}

// dlogits from the gradient of the chosen gates (dgates [T, k]), of the dense probabilities
// (dprobs [T, E]: auxiliary losses), and a z-loss weight per token (z: adds z * d(lse^2)/dlogits).
export function routerBackward(
  logits: Tensor, choice: RouterChoice, opts: RouterOptions & { dgates?: Tensor; dprobs?: Tensor; z?: number } = {},
): Tensor {
  opts = checkObject('routerBackward', 'options', opts, ['gate', 'renormalize', 'dgates', 'dprobs', 'z']) as typeof opts;
  const fn = 'routerBackward';
  if (typeof choice !== 'object' || choice === null) throw typeError(fn, 'choice', 'the result of routerTopk', choice);
  // read once: the tensors checked are the tensors used
  const c: RouterChoice = { probs: choice.probs, lse: choice.lse, experts: choice.experts, gates: choice.gates };
  for (const key of ['probs', 'lse', 'experts', 'gates'] as const) checkTensor(fn, `choice.${key}`, c[key]);
  checkTensor(fn, 'choice.experts', c.experts, { dtype: 'i32', ndim: 2 });
  const k = c.experts.shape[1];
  const { gate, renorm } = routerArgs(fn, logits, k, opts);
  const [T, E] = logits.shape;
  const d = statDtype(logits), dev = logits.device;
  checkTensor(fn, 'choice.probs', c.probs, { dtype: d, shape: [T, E], device: dev });
  checkTensor(fn, 'choice.lse', c.lse, { dtype: d, shape: [T], device: dev });
  checkTensor(fn, 'choice.experts', c.experts, { shape: [T, k], device: dev });
  checkTensor(fn, 'choice.gates', c.gates, { dtype: d, shape: [T, k], device: dev });
  if (opts.dgates !== undefined) checkTensor(fn, 'options.dgates', opts.dgates, { dtype: statDtype(logits), shape: [T, k], device: logits.device });
  if (opts.dprobs !== undefined) checkTensor(fn, 'options.dprobs', opts.dprobs, { dtype: statDtype(logits), shape: [T, E], device: logits.device });
  const z = checkNumber(fn, 'options.z', opts.z ?? 0);
  const dl = Tensor.empty([T, E], logits.dtype, logits.device);
  native().routerBackward(logits.handle(), k, GATE[gate], renorm, c.probs.handle(), c.lse.handle(), c.experts.handle(),
    c.gates.handle(), opts.dgates?.handle() ?? null, opts.dprobs?.handle() ?? null, z, dl.handle());
  return dl;
}

// y[r] = x[r] * w[r]  (gates, router weights)
export function rowScale(x: Tensor, w: Tensor): Tensor {
  checkFloat('rowScale', 'x', x, { ndim: 2 });
  checkTensor('rowScale', 'w', w, { dtype: statDtype(x), shape: [x.shape[0]], device: x.device });
  const y = Tensor.empty(x.shape, x.dtype, x.device);
  native().rowScale(x.handle(), w.handle(), y.handle());
  return y;
}

// out[r] = <a[r], b[r]>  (the gradient of a row scale)
export function rowDot(a: Tensor, b: Tensor): Tensor {
  checkFloat('rowDot', 'a', a, { ndim: 2 });
  checkTensor('rowDot', 'b', b, { dtype: a.dtype, shape: [...a.shape], device: a.device });
  const out = Tensor.empty([a.shape[0]], statDtype(a), a.device);
  native().rowDot(a.handle(), b.handle(), out.handle());
  return out;
}

// Token of each dispatch slot: assignment / k; -1 for empty slots and assignments to the no-op expert.
export function slotTokens(slots: Tensor, k: number, opts: { experts?: Tensor; noop?: number } = {}): Tensor {
  opts = checkObject('slotTokens', 'options', opts, ['experts', 'noop']) as typeof opts;
  checkTensor('slotTokens', 'slots', slots, { dtype: 'i32', ndim: 1 });
  checkNumber('slotTokens', 'k', k, { integer: true, min: 1 });
  if (opts.experts !== undefined) checkTensor('slotTokens', 'options.experts', opts.experts, { dtype: 'i32', device: slots.device });
  if (opts.noop !== undefined) checkNumber('slotTokens', 'options.noop', opts.noop, { integer: true, min: -1, max: 2 ** 31 - 1 });
  if ((opts.noop ?? -1) >= 0 && opts.experts === undefined) throw rangeError('slotTokens', 'options.experts', 'the expert of each assignment when a no-op expert is given', undefined);
  const out = Tensor.empty(slots.shape, 'i32', slots.device);
  native().slotTokens(slots.handle(), k, opts.experts?.handle() ?? null, opts.noop ?? -1, out.handle());
  return out;
}

// Dispatch priority of token-choice assignments (Switch/GShard): every token's first choice in
// sequence order, then every second choice, ...: order[j * N + r] = rows[r] * k + j, where rows[r] is
// the row (assignment block) of the r-th token in sequence order; rows null: the rows are already in
// sequence order. Gathering the experts of the assignments through it gives a list whose stable
// grouping by expert is in priority order (capacitySlots then keeps the first C of each expert).
export function assignmentPriority(rows: Tensor | null, tokens: number, k: number, opts: { device?: Tensor['device'] } = {}): Tensor {
  const fn = 'assignmentPriority';
  opts = checkObject(fn, 'options', opts) as typeof opts;
  checkNumber(fn, 'tokens', tokens, { integer: true, min: 0 });
  checkNumber(fn, 'k', k, { integer: true, min: 1 });
  if (rows !== null) checkTensor(fn, 'rows', rows, { dtype: 'i32', shape: [tokens] });
  if (rows === null && !opts.device) throw rangeError(fn, 'options.device', 'a device when rows is null', undefined);
  const out = Tensor.empty([tokens * k], 'i32', rows?.device ?? opts.device!);
  native().assignmentPriority(rows?.handle() ?? null, tokens, k, out.handle());
  return out;
}

// Capacity dispatch: [E * capacity] slots, expert e's first `capacity` assignments in the order of
// perm, -1 beyond. With `order` (from assignmentPriority), perm indexes the priority-ordered list and
// each slot holds order[perm[...]]: the assignment index itself.
export function capacitySlots(perm: Tensor, offsets: Tensor, capacity: number, opts: { order?: Tensor } = {}): Tensor {
  opts = checkObject('capacitySlots', 'options', opts) as typeof opts;
  checkTensor('capacitySlots', 'perm', perm, { dtype: 'i32', ndim: 1 });
  checkTensor('capacitySlots', 'offsets', offsets, { dtype: 'i32', ndim: 1 });
  if (opts.order) checkTensor('capacitySlots', 'options.order', opts.order, { dtype: 'i32', shape: [perm.shape[0]] });
  sameDevice('capacitySlots', { perm, offsets, ...(opts.order ? { 'options.order': opts.order } : {}) });
  checkNumber('capacitySlots', 'capacity', capacity, { integer: true, min: 0 });
  const out = Tensor.empty([(offsets.shape[0] - 1) * capacity], 'i32', perm.device);
  native().capacitySlots(perm.handle(), offsets.handle(), capacity, opts.order?.handle() ?? null, out.handle());
  return out;
}

// Expert choice: chosen tokens [E, C] (from topkColumns) -> the flat index t * E + e of each
// chosen token's probability in probs [T, E].
export function choiceGateIndex(chosen: Tensor, experts: number): Tensor {
  checkTensor('choiceGateIndex', 'chosen', chosen, { dtype: 'i32', ndim: 2, shape: [experts, null] });
  const out = Tensor.empty([chosen.numel], 'i32', chosen.device);
  native().choiceGateIndex(chosen.handle(), experts, out.handle());
  return out;
}
