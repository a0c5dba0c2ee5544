// Mixture-of-Experts feed-forward: token-choice top-k routing (softmax or sigmoid gates, optional
// renormalisation) or expert choice; dropless execution through the grouped GEMM (one launch for
// all experts, group sizes read on the device) or a capacity factor (each expert keeps its first
// C assignments in token order, the rest are dropped); a load-balancing loss and a router z-loss
// with weights; optionally a no-op expert beside the FFN experts (integrated MoDE: a token routed
// there skips the FFN). Experts are SwiGLU FFNs, weights [E, 2F, d] and [E, d, F].
import { Tensor } from '../core/tensor';
import {
  RouterChoice, capacitySlots, cast, choiceGateIndex, gatherRows, groupedMatmul, groupedMatmulDW, groupedMatmulDX, matmul, mul,
  routerBackward, routerTopk, routingPlan, rowDot, rowScale, scale, scatterRows, slotTokens, sum, swiglu, swigluBackward, tensor, topkColumns,
  zeros, add, square, mean, abs, step, sub,
} from '../ops';
import { Batch } from './batch';
import { FeedForward, GroupedSwiGLU } from './ffn';
import { InitContext, normalInit } from './init';
import { Module, release } from './module';
import { Parameter } from './parameter';

export interface MoeConfig {
  experts: number; // FFN experts
  k: number; // experts per token (token choice); capacity multiplier (expert choice)
  hidden: number; // FFN size of each expert
  gate: 'softmax' | 'sigmoid';
  renormalize: boolean;
  choice: 'token' | 'expert';
  capacityFactor: number; // 0: dropless (token choice); expert choice needs > 0
  noop: boolean; // one extra no-op expert (integrated MoDE)
  lbWeight: number;
  zWeight: number;
}

export const MOE_DEFAULTS: MoeConfig = {
  experts: 4, k: 2, hidden: 256, gate: 'softmax', renormalize: true, choice: 'token', capacityFactor: 0, noop: false, lbWeight: 0.01, zWeight: 0.001,
};

export interface MoeStats {
  load: Tensor; // f32 [E (+1)]: assignments per expert (token choice) before capacity
  lbLoss: Tensor; // [1]
  zLoss: Tensor; // [1]
  assignments: number;
}

interface Saved {
  x: Tensor;
  logits: Tensor; // f32 [N, Etot]
  choice: RouterChoice;
  slots: Tensor | null; // token choice: assignment index per slot (-1: empty)
  gateIndex: Tensor | null; // expert choice: flat index into probs per slot
  tok: Tensor; // token per slot (-1: none)
  offs: Tensor; // group offsets of the slots [E + 1]
  h: Tensor; // gathered rows [S, d]
  gu: Tensor; // [S, 2F]
  a: Tensor; // [S, F]
  y: Tensor; // expert outputs [S, d]
  gs: Tensor; // gate per slot [S]
  counts: Tensor; // f32 [Etot]
}

export class MoEFeedForward extends Module implements FeedForward {
  readonly router: Parameter;
  readonly wGateUp: Parameter;
  readonly wDown: Parameter;
  #saved: Saved | null = null;
  lastStats: MoeStats | null = null;
  // Multiplies the balance and z-loss gradients: 1/accum under gradient accumulation, like the main loss.
  auxGradScale = 1;

  constructor(readonly name: string, readonly dModel: number, readonly cfg: MoeConfig, init: InitContext, computeDtype: Tensor['dtype'], outStd: number) {
    super();
    if (cfg.choice === 'expert' && !(cfg.capacityFactor > 0)) throw new RangeError(`${name}: expert choice needs a capacity factor > 0`);
    if (cfg.choice === 'expert' && cfg.noop) throw new RangeError(`${name}: the no-op expert is for token choice`);
    const E = cfg.experts;
    this.router = new Parameter(`${name}.router`, normalInit(init, [this.totalExperts, dModel], 0.02), 'router', computeDtype);
    this.wGateUp = new Parameter(`${name}.experts.w_gate_up`, normalInit(init, [E, 2 * cfg.hidden, dModel], 0.02), 'matrix', computeDtype, E);
    this.wDown = new Parameter(`${name}.experts.w_down`, normalInit(init, [E, dModel, cfg.hidden], outStd), 'matrix', computeDtype, E);
  }

  get totalExperts(): number {
    return this.cfg.experts + (this.cfg.noop ? 1 : 0);
  }

  parameters(): Parameter[] {
    return [this.router, this.wGateUp, this.wDown];
  }

  // Slots per expert when capacity-limited.
  capacity(tokens: number): number {
    return Math.max(1, Math.ceil((this.cfg.capacityFactor * tokens * this.cfg.k) / this.cfg.experts));
  }

  forward(x: Tensor, _batch: Batch): Tensor {
    this.clearSaved();
    const { cfg } = this;
    const N = x.shape[0], E = cfg.experts, Et = this.totalExperts, dev = x.device;
    const lc = matmul(x, this.router.compute, { transB: true });
    const logits = lc.dtype === 'bf16' ? cast(lc, 'f32') : lc;
    if (logits !== lc) lc.dispose();
    const choice = routerTopk(logits, cfg.choice === 'token' ? cfg.k : 1, { gate: cfg.gate, renormalize: cfg.renormalize });
    const assign = choice.experts.reshape([choice.experts.numel]);
    const plan = routingPlan(assign, Et);
    const counts = cast(plan.counts, logits.dtype);
    let slots: Tensor | null = null, gateIndex: Tensor | null = null, tok: Tensor, offs: Tensor, gs: Tensor;
    if (cfg.choice === 'expert') {
      const C = this.capacity(N);
      const chosen = topkColumns(choice.probs, Math.min(C, N)); // [E, C]
      tok = chosen.reshape([chosen.numel]);
      gateIndex = choiceGateIndex(chosen, E);
      chosen.dispose();
      offs = tensor(Int32Array.from({ length: E + 1 }, (_, e) => e * Math.min(C, N)), [E + 1], { dtype: 'i32', device: dev });
      const pf = choice.probs.reshape([N * Et]);
      gs = gatherRows(pf, gateIndex);
      pf.dispose();
    } else {
      if (cfg.capacityFactor > 0) {
        const C = this.capacity(N);
        const all = capacitySlots(plan.perm, plan.offsets, C); // [Et * C]; the no-op expert's come last
        slots = all.slice(0, E * C);
        all.dispose();
        offs = tensor(Int32Array.from({ length: E + 1 }, (_, e) => e * C), [E + 1], { dtype: 'i32', device: dev });
      } else {
        slots = plan.perm.reshape([plan.perm.numel]);
        offs = plan.offsets.slice(0, E + 1); // rows after offsets[E] are the no-op expert's
      }
      tok = slotTokens(slots, cfg.k, { experts: assign, noop: cfg.noop ? E : -1 });
      const gf = choice.gates.reshape([choice.gates.numel]);
      gs = gatherRows(gf, slots);
      gf.dispose();
    }
    assign.dispose();
    plan.dispose();
    const S = tok.shape[0];
    const h = gatherRows(x, tok);
    const gu = groupedMatmul(h, this.wGateUp.compute, offs, { out: zeros([S, 2 * cfg.hidden], { dtype: x.dtype, device: dev }) });
    const a = swiglu(gu);
    const y = groupedMatmul(a, this.wDown.compute, offs, { out: zeros([S, this.dModel], { dtype: x.dtype, device: dev }) });
    const ys = rowScale(y, gs);
    const out = scatterRows(ys, tok, N, { accumulate: true });
    ys.dispose();
    this.releaseStats();
    this.lastStats = this.stats(choice, counts, N);
    this.#saved = { x: x.reshape([...x.shape]), logits, choice, slots, gateIndex, tok, offs, h, gu, a, y, gs, counts };
    return out;
  }

  // Load-balancing loss E * sum_e f_e P_e (f: share of assignments, P: mean router probability)
  // and z-loss mean(lse^2), both unweighted, on the device.
  private stats(choice: RouterChoice, counts: Tensor, N: number): MoeStats {
    const E = this.cfg.experts, A = N * (this.cfg.choice === 'token' ? this.cfg.k : 1);
    const psum = sum(choice.probs, { axis: 0 });
    const prod = mul(psum, counts);
    const lbs = sum(prod);
    const lbv = lbs.reshape([1]);
    const lbLoss = scale(lbv, E / (A * N));
    lbv.dispose();
    const l2 = square(choice.lse);
    const zl = mean(l2);
    const zLoss = zl.reshape([1]);
    for (const t of [psum, prod, lbs, l2, zl]) t.dispose();
    return { load: counts.reshape([counts.numel]), lbLoss, zLoss, assignments: A };
  }

  backward(dout: Tensor): Tensor {
    const s = this.#saved;
    if (!s) throw new Error(`${this.name}: backward without a forward`);
    const { cfg } = this;
    const N = s.x.shape[0], E = cfg.experts, Et = this.totalExperts, S = s.tok.shape[0], dev = s.x.device;
    const dys = gatherRows(dout, s.tok);
    const dgs = rowDot(dys, s.y);
    const dy = rowScale(dys, s.gs);
    dys.dispose();
    const da = groupedMatmulDX(dy, this.wDown.compute, s.offs, { out: zeros([S, cfg.hidden], { dtype: dy.dtype, device: dev }) });
    this.accumulate(this.wDown, groupedMatmulDW(dy, s.a, s.offs));
    dy.dispose();
    const dgu = swigluBackward(da, s.gu);
    da.dispose();
    const dh = groupedMatmulDX(dgu, this.wGateUp.compute, s.offs, { out: zeros([S, this.dModel], { dtype: dgu.dtype, device: dev }) });
    this.accumulate(this.wGateUp, groupedMatmulDW(dgu, s.h, s.offs));
    dgu.dispose();
    const dx = scatterRows(dh, s.tok, N, { accumulate: true });
    dh.dispose();
    // router: gates, load balancing, z-loss
    const A = N * (cfg.choice === 'token' ? cfg.k : 1);
    const lbRow = scale(s.counts, (this.auxGradScale * cfg.lbWeight * E) / (A * N)); // d(lb)/d probs[t, e] = w E f_e / N
    const dprobs = zeros([N, Et], { device: dev, dtype: s.logits.dtype });
    add(dprobs, lbRow, dprobs); // the row broadcasts over tokens
    lbRow.dispose();
    let dgates: Tensor | undefined;
    if (cfg.choice === 'expert') {
      const flat = dprobs.reshape([N * Et]);
      scatterRows(dgs, s.gateIndex!, N * Et, { accumulate: true, out: flat });
      flat.dispose();
    } else {
      const dg = scatterRows(dgs, s.slots!, N * cfg.k);
      dgates = dg.reshape([N, cfg.k]);
      dg.dispose();
    }
    dgs.dispose();
    const dl = routerBackward(s.logits, s.choice, { gate: cfg.gate, renormalize: cfg.renormalize, dgates, dprobs, z: (this.auxGradScale * cfg.zWeight) / N });
    dgates?.dispose();
    dprobs.dispose();
    const dlc = dl.dtype === s.x.dtype ? dl : cast(dl, s.x.dtype);
    if (dlc !== dl) dl.dispose();
    this.router.accumulate(matmul(dlc, s.x, { transA: true })); // [Et, d]
    matmul(dlc, this.router.compute, { out: dx, beta: 1 });
    dlc.dispose();
    this.clearSaved();
    return dx;
  }

  private accumulate(p: Parameter, g: Tensor): void {
    p.accumulate(g);
  }

  clearSaved(): void {
    const s = this.#saved;
    if (s) {
      s.choice.probs.dispose();
      s.choice.lse.dispose();
      s.choice.experts.dispose();
      s.choice.gates.dispose();
      release({ ...s, choice: null });
    }
    this.#saved = null;
  }

  takeStats(): MoeStats | null {
    const s = this.lastStats;
    this.lastStats = null;
    return s;
  }

  releaseStats(): void {
    if (this.lastStats) for (const t of [this.lastStats.load, this.lastStats.lbLoss, this.lastStats.zLoss]) t.dispose();
    this.lastStats = null;
  }
}


// MoT + MoE: one modality's FFN replaced by experts (the MoT paper's "MoT + text MoE-4x"); the
// other modalities keep their own dense FFN. Both run on all rows; a per-row mask picks each row's
// output (the dense FFN's work on the expert modality's rows is the price of no host sync).
export class ModalityExpertFFN extends Module implements FeedForward {
  #masks: { dense: Tensor; experts: Tensor } | null = null;

  constructor(readonly dense: GroupedSwiGLU, readonly moe: MoEFeedForward, readonly modality: number) {
    super();
  }

  parameters(): Parameter[] {
    return [...this.dense.parameters(), ...this.moe.parameters()];
  }

  forward(x: Tensor, batch: Batch): Tensor {
    this.clearSaved();
    const ids = batch.rowIds(this.dense.groups);
    if (!ids) throw new RangeError('ModalityExpertFFN: needs the modality of each row');
    const f = cast(ids, x.dtype === 'f64' ? 'f64' : 'f32');
    const shifted = scale(f, 1, -this.modality), dist = abs(shifted), off = scale(dist, 1, -0.5);
    const denseMask = step(off); // 1 where the row is not the expert modality
    const expertMask = scale(denseMask, -1, 1);
    for (const t of [f, shifted, dist, off]) t.dispose();
    const yd = this.dense.forward(x, batch), ym = this.moe.forward(x, batch);
    const a = rowScale(yd, denseMask), b = rowScale(ym, expertMask);
    const out = add(a, b, a);
    for (const t of [yd, ym, b]) t.dispose();
    this.#masks = { dense: denseMask, experts: expertMask };
    return out;
  }

  backward(dy: Tensor): Tensor {
    const m = this.#masks;
    if (!m) throw new Error('ModalityExpertFFN: backward without a forward');
    const dd = rowScale(dy, m.dense), dm = rowScale(dy, m.experts);
    const gx = this.dense.backward(dd), mx = this.moe.backward(dm);
    const out = add(gx, mx, gx);
    for (const t of [dd, dm, mx]) t.dispose();
    this.clearSaved();
    return out;
  }

  clearSaved(): void {
    this.#masks?.dense.dispose();
    this.#masks?.experts.dispose();
    this.#masks = null;
    this.dense.clearSaved();
    this.moe.clearSaved();
  }
}
