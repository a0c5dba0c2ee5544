// Mixture-of-Depths (arXiv 2404.02258) around any block: a scalar router (linear, no bias) scores
// every token; per sequence (packed row) exactly k = max(1, ceil(C * S)) tokens (the top scores of
// the row, or of each modality's share of it: mod_capacity.ts), ties to the earlier one, go through the block, in order and with their original positions (attention among
// the chosen only, causal by original position); the block's update is multiplied by the router
// weight and added back on the residual; the others pass unchanged. The router learns through
// that product. Top-k is not causal, so sampling uses a causal decision, trained here: an
// auxiliary BCE loss on the router logits ('bce': sigmoid(router) > 0.5 decides), or a small MLP
// predictor on the stop-gradient input ('predictor').
import { Tensor } from '../core/tensor';
import {
  add, cast, copy_, fill_, gatherRows, log, matmul, mul, relu, rowDot, rowScale, scale, scatterRows, sigmoid, softplus, step, sub, sum, tensor,
} from '../ops';
import { Batch } from './batch';
import { InitContext, normalInit } from './init';
import { Module, keep } from './module';
import { ModCapacityBy, chooseTokens } from './mod_capacity';
import { KVCache } from './kv_cache';
import { Block, MoTBlock } from './mot_block';
import { Parameter } from './parameter';

export type ModGate = 'raw' | 'sigmoid' | 'one';
export type ModAux = 'bce' | 'predictor' | 'none';

export interface ModConfig {
  capacity: number; // fraction C of each sequence's tokens that go through the block
  // how the k = ceil(C * S) slots of a sequence are taken: by the top scores of the whole sequence, or
  // shared among the modalities in proportion to their tokens, each by its own top scores (mod_capacity.ts)
  capacityBy: ModCapacityBy;
  // what multiplies the update: sigmoid of the router logit (default), the raw logit (the paper's
  // literal r), or 1 (tests). The raw logit starts near 0 (a small router on a small residual
  // stream); the block's gradient is proportional to it and the router's to the block's (untrained)
  // update, so training can stay at r ~ 0 (every layer routed: the blocks did nothing). The sigmoid starts at 0.5, stays
  // positive and agrees with the causal decision (sigmoid > 0.5); the router learns through the product.
  gate: ModGate;
  aux: ModAux;
  auxWeight: number;
  predictorHidden: number;
}

export const MOD_DEFAULTS: ModConfig = { capacity: 0.125, capacityBy: 'sequence', gate: 'sigmoid', aux: 'bce', auxWeight: 0.01, predictorHidden: 64 };

interface Saved {
  batch: Batch; // the parent batch (to leave and re-enter grouped order)
  xo: Tensor; // input, original order
  idx: Tensor; // chosen token indices [n], ascending
  sub: Batch; // the chosen tokens as a batch
  delta: Tensor; // block update of the chosen, original order [n, d]
  g: Tensor; // gate values of the chosen [n]
  logits: Tensor; // all router logits [T] (f32)
  target: Tensor; // 1 where chosen [T]
  pred: Tensor | null; // predictor probability [T]
  hidden: Tensor | null; // predictor hidden pre-activation [T, h]
}

// Router statistics of the last forward (device scalars: read them after the step).
export interface ModStats {
  auxLoss: Tensor; // [1] BCE of the causal decision against top-k
  agreement: Tensor; // [1] tokens where the causal decision equals top-k's choice
  gateMean: Tensor; // [1] mean gate of the chosen tokens (what their update is multiplied by)
  chosenByModality: Tensor; // i32 [M] chosen tokens of each modality
  tokensByModality: number[] | null; // tokens of each modality (null for a batch chosen on the device)
  tokens: number;
  chosen: number;
}

const oneMinus = (t: Tensor) => scale(t, -1, 1);
function meanOf(t: Tensor): Tensor {
  const s = sum(t);
  const v = s.reshape([1]);
  const m = scale(v, 1 / Math.max(1, t.numel));
  v.dispose();
  s.dispose();
  return m;
}
function castTo(t: Tensor, dtype: Tensor['dtype']): Tensor {
  if (t.dtype === dtype) return t;
  const c = cast(t, dtype);
  t.dispose();
  return c;
}

export class MoDBlock extends Module implements Block {
  readonly router: Parameter;
  readonly predictor: { w1: Parameter; w2: Parameter } | null;
  #saved: Saved | null = null;
  lastStats: ModStats | null = null;
  // Multiplies the auxiliary (BCE or predictor) gradient: 1/accum under gradient accumulation, like the main loss.
  auxGradScale = 1;

  constructor(
    readonly name: string,
    readonly inner: Block,
    readonly dModel: number,
    readonly cfg: ModConfig,
    init: InitContext,
    computeDtype: Tensor['dtype'],
  ) {
    super();
    this.router = new Parameter(`${name}.mod_router`, normalInit(init, [1, dModel], 0.02), 'router', computeDtype);
    this.predictor =
      cfg.aux === 'predictor'
        ? {
            w1: new Parameter(`${name}.mod_predictor.w1`, normalInit(init, [cfg.predictorHidden, dModel], 0.02), 'router', computeDtype),
            w2: new Parameter(`${name}.mod_predictor.w2`, normalInit(init, [1, cfg.predictorHidden], 0.02), 'router', computeDtype),
          }
        : null;
  }

  parameters(): Parameter[] {
    return [this.router, ...(this.predictor ? [this.predictor.w1, this.predictor.w2] : []), ...this.inner.parameters()];
  }

  // Tokens of each sequence that go through the block.
  chosenPerRow(rowLength: number): number {
    return Math.min(rowLength, Math.max(1, Math.ceil(this.cfg.capacity * rowLength)));
  }

  private gateOf(r: Tensor): Tensor {
    switch (this.cfg.gate) {
      case 'raw': return keep(r);
      case 'sigmoid': return sigmoid(r);
      case 'one': return fill_(Tensor.empty(r.shape, r.dtype, r.device), 1);
    }
  }

  // [T, 1] product with a [1, d]-shaped weight, as a flat f32 (f64) vector [T]
  private static column(x: Tensor, w: Tensor): Tensor {
    const l = matmul(x, w, { transB: true });
    const f = l.dtype === 'bf16' ? castTo(l, 'f32') : l;
    const flat = f.reshape([f.shape[0]]);
    f.dispose();
    return flat;
  }

  forward(x: Tensor, batch: Batch): Tensor {
    this.clearSaved();
    const T = batch.T, S = batch.rowLength, R = T / S;
    if (!Number.isInteger(R)) throw new RangeError(`${this.name}: the batch has ${T} tokens, not a whole number of rows of ${S}`);
    const k = this.chosenPerRow(S);
    const xo = batch.toOriginal(x);
    const logits = MoDBlock.column(xo, this.router.compute);
    const { idx, mask: target } = chooseTokens(logits, batch.hostModality, batch.modalities, S, k, this.cfg.capacityBy);
    const subBatch = batch.subset(idx, k);
    const xs = gatherRows(xo, idx);
    const xsg = subBatch.toGrouped(xs);
    xs.dispose();
    const ysg = this.inner.forward(xsg, subBatch);
    const dg = sub(ysg, xsg); // the block's update (it returns x + update)
    ysg.dispose();
    xsg.dispose();
    const delta = subBatch.toOriginal(dg);
    dg.dispose();
    const r = gatherRows(logits, idx);
    const g = this.gateOf(r);
    r.dispose();
    const out = copy_(Tensor.empty(xo.shape, xo.dtype, xo.device), xo);
    const upd = rowScale(delta, g);
    scatterRows(upd, idx, T, { accumulate: true, out });
    upd.dispose();
    const { pred, hidden } = this.predict(xo);
    this.releaseStats();
    this.lastStats = {
      ...this.stats(logits, target, pred, T, R * k), gateMean: meanOf(g),
      chosenByModality: copy_(Tensor.empty(subBatch.plan.counts.shape, 'i32', x.device), subBatch.plan.counts), tokensByModality: batch.hostCounts,
    };
    this.#saved = { batch, xo, idx, sub: subBatch, delta, g, logits, target, pred, hidden };
    const y = batch.toGrouped(out);
    out.dispose();
    return y;
  }

  // Generation: each token decides for itself (sigmoid of its router logit, or the predictor,
  // above 0.5), so no token's route depends on later ones. Reads the decisions on the host.
  // With a cache (a prompt's prefill), the chosen tokens go through the inner block's decode and
  // their keys and values fill the cache, as token-by-token decoding would.
  async forwardCausal(x: Tensor, batch: Batch, cache?: KVCache): Promise<Tensor> {
    this.clearSaved();
    const xo = batch.toOriginal(x);
    const logits = MoDBlock.column(xo, this.router.compute);
    const { pred, hidden } = this.predict(xo);
    hidden?.dispose();
    const p = pred ?? sigmoid(logits);
    const decide = Array.from(await p.toArray());
    p.dispose();
    const chosen = decide.flatMap((v, i) => (v > 0.5 ? [i] : []));
    let out: Tensor;
    if (!chosen.length) out = xo.reshape([...xo.shape]);
    else {
      const idx = tensor(Int32Array.from(chosen), [chosen.length], { dtype: 'i32', device: x.device });
      const subBatch = batch.subset(idx, chosen.length);
      const xs = gatherRows(xo, idx);
      const xsg = subBatch.toGrouped(xs);
      const ysg = cache ? this.decodeInner(xsg, subBatch, cache) : this.inner.forward(xsg, subBatch);
      this.inner.clearSaved();
      const dg = sub(ysg, xsg);
      const delta = subBatch.toOriginal(dg);
      const r = gatherRows(logits, idx);
      const g = this.gateOf(r);
      out = copy_(Tensor.empty(xo.shape, xo.dtype, xo.device), xo);
      const upd = rowScale(delta, g);
      scatterRows(upd, idx, batch.T, { accumulate: true, out });
      for (const t of [idx, xs, xsg, ysg, dg, delta, r, g, upd]) t.dispose();
      subBatch.dispose();
    }
    logits.dispose();
    xo.dispose();
    const y = batch.toGrouped(out);
    out.dispose();
    return y;
  }

  // Incremental decoding of one new token x [1, d]: the causal decision (as forwardCausal) says
  // whether it goes through the inner block, whose cache holds only the tokens that went through.
  // Several tokens (a prefill): forwardCausal through the cache.
  async decode(x: Tensor, batch: Batch, cache: KVCache): Promise<Tensor> {
    if (batch.T > 1) return this.forwardCausal(x, batch, cache);
    const logits = MoDBlock.column(x, this.router.compute);
    const { pred, hidden } = this.predict(x);
    hidden?.dispose();
    const p = pred ?? sigmoid(logits);
    const chosen = (await p.toArray())[0] > 0.5;
    p.dispose();
    if (!chosen) {
      logits.dispose();
      return copy_(Tensor.empty(x.shape, x.dtype, x.device), x);
    }
    const y = this.decodeInner(x, batch, cache);
    const d = sub(y, x, y);
    const g = this.gateOf(logits);
    const upd = rowScale(d, g);
    const out = add(x, upd, upd);
    for (const t of [logits, d, g]) t.dispose();
    return out;
  }

  private decodeInner(x: Tensor, batch: Batch, cache: KVCache): Tensor {
    if (!(this.inner instanceof MoTBlock)) throw new Error(`${this.name}: decode needs a MoT block inside`);
    return this.inner.decode(x, batch, cache);
  }

  // The predictor MLP on the stop-gradient input: sigmoid(w2 . relu(w1 . x)) -> [T].
  private predict(xo: Tensor): { pred: Tensor | null; hidden: Tensor | null } {
    if (!this.predictor) return { pred: null, hidden: null };
    const hidden = matmul(xo, this.predictor.w1.compute, { transB: true }); // [T, h]
    const a = relu(hidden);
    const z = MoDBlock.column(a, this.predictor.w2.compute);
    a.dispose();
    const p = sigmoid(z);
    z.dispose();
    return { pred: p, hidden };
  }

  // BCE of the causal decision against top-k, and how often they agree (device scalars).
  private stats(logits: Tensor, target: Tensor, pred: Tensor | null, T: number, chosen: number): Omit<ModStats, 'gateMean' | 'chosenByModality' | 'tokensByModality'> {
    let loss: Tensor, prob: Tensor;
    if (pred) {
      // -(t log p + (1 - t) log(1 - p))
      prob = keep(pred);
      const pe = scale(pred, 1, 1e-12), qe = scale(pred, -1, 1 + 1e-12);
      const lp = log(pe), lq = log(qe);
      const diff = sub(lp, lq), tdiff = mul(target, diff), s = add(lq, tdiff);
      const m = meanOf(s);
      loss = scale(m, -1);
      for (const t of [pe, qe, lp, lq, diff, tdiff, s, m]) t.dispose();
    } else {
      // from logits: softplus(l) - t l
      prob = sigmoid(logits);
      const sp = softplus(logits), tl = mul(target, logits), d = sub(sp, tl);
      loss = meanOf(d);
      for (const t of [sp, tl, d]) t.dispose();
    }
    // agree = s t + (1 - s)(1 - t) = 1 - s - t + 2 s t, s = (p > 0.5)
    const half = scale(prob, 1, -0.5);
    const sdec = step(half);
    const st = mul(sdec, target);
    const a1 = scale(st, 2, 1);
    const a2 = sub(a1, sdec);
    const a3 = sub(a2, target);
    const total = sum(a3);
    const agreement = total.reshape([1]);
    for (const t of [prob, half, sdec, st, a1, a2, a3, total]) t.dispose();
    return { auxLoss: loss, agreement, tokens: T, chosen };
  }

  backward(dy: Tensor): Tensor {
    const s = this.#saved;
    if (!s) throw new Error(`${this.name}: backward without a forward`);
    const T = s.xo.shape[0];
    const dout = s.batch.toOriginal(dy);
    const dx = copy_(Tensor.empty(dout.shape, dout.dtype, dout.device), dout); // the residual path
    const dsel = gatherRows(dout, s.idx);
    dout.dispose();
    const dgate = rowDot(dsel, s.delta); // d loss / d gate, [n]
    const ddelta = rowScale(dsel, s.g);
    dsel.dispose();
    const ddg = s.sub.toGrouped(ddelta);
    ddelta.dispose();
    const din = this.inner.backward(ddg);
    const dxsg = sub(din, ddg); // update = block(x) - x
    din.dispose();
    ddg.dispose();
    const dxs = s.sub.toOriginal(dxsg);
    dxsg.dispose();
    scatterRows(dxs, s.idx, T, { accumulate: true, out: dx });
    dxs.dispose();
    // the router: through the gate for the chosen, plus the auxiliary BCE on all logits
    let drSel: Tensor;
    if (this.cfg.gate === 'raw') drSel = dgate;
    else if (this.cfg.gate === 'sigmoid') {
      const om = oneMinus(s.g), gg = mul(s.g, om);
      drSel = mul(dgate, gg);
      for (const t of [om, gg, dgate]) t.dispose();
    } else {
      drSel = scale(dgate, 0);
      dgate.dispose();
    }
    const dr = scatterRows(drSel, s.idx, T);
    drSel.dispose();
    if (this.cfg.aux === 'bce' && this.cfg.auxWeight > 0) {
      const p = sigmoid(s.logits), e = sub(p, s.target);
      scale(e, (this.auxGradScale * this.cfg.auxWeight) / T, 0, e);
      add(dr, e, dr);
      p.dispose();
      e.dispose();
    }
    // dW_r += dr^T xo ; dx += dr w_r
    const drc = castTo(dr.reshape([T, 1]), s.xo.dtype);
    dr.dispose();
    this.router.accumulate(matmul(drc, s.xo, { transA: true }));
    matmul(drc, this.router.compute, { out: dx, beta: 1 });
    drc.dispose();
    if (this.predictor && s.pred && s.hidden) this.predictorBackward(s.pred, s.hidden, s.target, s.xo, T);
    const dxg = s.batch.toGrouped(dx);
    dx.dispose();
    this.clearSaved();
    return dxg;
  }

  // BCE of the predictor against top-k; the gradient stays in the predictor (stop-gradient input).
  private predictorBackward(pred: Tensor, hidden: Tensor, target: Tensor, xo: Tensor, T: number): void {
    const p = this.predictor!;
    const e = sub(pred, target); // dBCE/dz = p - t
    scale(e, (this.auxGradScale * this.cfg.auxWeight) / T, 0, e);
    const dz = castTo(e.reshape([T, 1]), xo.dtype);
    e.dispose();
    const a = relu(hidden);
    p.w2.accumulate(matmul(dz, a, { transA: true })); // [1, h]
    a.dispose();
    const da = matmul(dz, p.w2.compute); // [T, h]
    const mask = step(hidden);
    const dh = mul(da, mask);
    for (const t of [da, mask, dz]) t.dispose();
    p.w1.accumulate(matmul(dh, xo, { transA: true })); // [h, d]
    dh.dispose();
  }

  clearSaved(): void {
    const s = this.#saved;
    if (s) {
      for (const t of [s.xo, s.idx, s.delta, s.g, s.logits, s.target, s.pred, s.hidden]) t?.dispose();
      s.sub.dispose();
    }
    this.#saved = null;
    this.inner.clearSaved();
  }

  // Hands the last forward's statistics to the caller (who disposes them).
  takeStats(): ModStats | null {
    const s = this.lastStats;
    this.lastStats = null;
    return s;
  }

  releaseStats(): void {
    this.lastStats?.auxLoss.dispose();
    this.lastStats?.agreement.dispose();
    this.lastStats?.gateMean.dispose();
    this.lastStats?.chosenByModality.dispose();
    this.lastStats = null;
  }
}
