// Mixture-of-Experts feed-forward: token-choice top-k routing (softmax or sigmoid gates, optional
// renormalisation) or expert choice; dropless execution through the grouped GEMM (one launch for
// all experts, group sizes read on the device) or a capacity factor (each expert keeps its first
// C assignments in Switch/GShard priority: every token's first choice in sequence order, then every
// second choice, ...; the rest are dropped); a load-balancing loss and a router z-loss
// with weights; optionally a no-op expert beside the FFN experts (integrated MoDE: a token routed
// there skips the FFN). Experts are SwiGLU FFNs, weights [E, 2F, d] and [E, d, F].
import { Tensor } from '../core/tensor';
import {
  RouterChoice, assignmentPriority, capacitySlots, copy_, cast, choiceGateIndex, gatherRows, groupedMatmul, groupedMatmulDW, groupedMatmulDX, matmul, mul,
  routerBackward, routerTopk, routingPlan, rowDot, rowScale, scale, scatterRows, slotTokens, sum, swiglu, swigluBackward, tensor, topkColumns,
  zeros, add, square, mean,
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

  // x: the batch's rows in grouped order (sequence order is reached through the plan's inverse).
  forward(x: Tensor, batch: Batch): Tensor {
    return this.forwardRows(x, batch.identity ? null : batch.plan.inv);
  }

  // x: rows [N, d]; sequenceRows: i32 [N], the row of the r-th token in sequence order (null: the rows
  // are in sequence order). Only capacity drops depend on it.
  forwardRows(x: Tensor, sequenceRows: Tensor | null): Tensor {
    this.clearSaved();
    const { cfg } = this;
    const N = x.shape[0], E = cfg.experts, Et = this.totalExperts, dev = x.device;
    const lc = matmul(x, this.router.compute, { transB: true });
    const logits = lc.dtype === 'bf16' ? cast(lc, 'f32') : lc;
    if (logits !== lc) lc.dispose();
    const choice = routerTopk(logits, cfg.choice === 'token' ? cfg.k : 1, { gate: cfg.gate, renormalize: cfg.renormalize });
    const assign = choice.experts.reshape([choice.experts.numel]);
    const capped = cfg.choice === 'token' && cfg.capacityFactor > 0;
    // capacity: group the assignments listed in priority order, so each expert's first C are the kept ones
    const priority = capped ? assignmentPriority(sequenceRows, N, cfg.k, { device: dev }) : null;
    const listed = priority ? gatherRows(assign, priority) : assign;
    const plan = routingPlan(listed, Et);
    if (listed !== assign) listed.dispose();
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
      if (priority) {
        const C = this.capacity(N);
        const all = capacitySlots(plan.perm, plan.offsets, C, { order: priority }); // [Et * C]; the no-op expert's come last
        priority.dispose();
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
// other modalities keep their own dense FFN. In grouped order the expert modality's rows are one
// contiguous block of the routing plan: only those rows enter the experts (router, load statistics,
// balancing and z losses over them alone), only the other rows enter the dense FFN, and each
// writes its own rows of the output. Nothing is computed for a row and thrown away, and no gradient
// crosses between the two sets of rows. The block's bounds come from the batch's modality counts,
// known on the host.
interface ModalityExpertSaved {
  T: number;
  lo: number; // first grouped row of the expert modality
  n: number; // its rows
  denseRows: Tensor | null; // i32 [T - n]: the other rows
}

export class ModalityExpertFFN extends Module implements FeedForward {
  #saved: ModalityExpertSaved | null = null;

  constructor(readonly dense: GroupedSwiGLU, readonly moe: MoEFeedForward, readonly modality: number) {
    super();
  }

  parameters(): Parameter[] {
    return [...this.dense.parameters(), ...this.moe.parameters()];
  }

  forward(x: Tensor, batch: Batch): Tensor {
    this.clearSaved();
    const counts = batch.hostCounts;
    if (!counts) throw new RangeError('ModalityExpertFFN: needs a batch whose modality counts are known on the host (one built from a TokenLayout)');
    const T = x.shape[0], m = this.modality, dev = x.device;
    const lo = counts.slice(0, m).reduce((a, c) => a + c, 0), n = counts[m];
    const out = Tensor.empty(x.shape, x.dtype, dev);
    let denseRows: Tensor | null = null;
    if (n < T) {
      // the other modalities' rows, with their group offsets (the expert modality's group empty)
      const rows = Int32Array.from({ length: T - n }, (_, i) => (i < lo ? i : i + n));
      denseRows = tensor(rows, [T - n], { dtype: 'i32', device: dev });
      const offs = new Int32Array(counts.length + 1);
      for (let g = 0; g < counts.length; g++) offs[g + 1] = offs[g] + (g === m ? 0 : counts[g]);
      const offsets = tensor(offs, [offs.length], { dtype: 'i32', device: dev });
      const xd = gatherRows(x, denseRows);
      const yd = this.dense.forward(xd, batch, offsets);
      scatterRows(yd, denseRows, T, { out });
      for (const t of [offsets, xd, yd]) t.dispose();
    } else this.dense.clearSaved();
    if (n > 0) {
      const xm = x.slice(lo, lo + n), om = out.slice(lo, lo + n);
      const ym = this.moe.forwardRows(xm, null); // the plan is stable: these rows are in sequence order
      copy_(om, ym);
      for (const t of [xm, om, ym]) t.dispose();
    } else {
      this.moe.clearSaved();
      this.moe.releaseStats();
    }
    this.#saved = { T, lo, n, denseRows };
    return out;
  }

  backward(dy: Tensor): Tensor {
    const s = this.#saved;
    if (!s) throw new Error('ModalityExpertFFN: backward without a forward');
    const dx = Tensor.empty(dy.shape, dy.dtype, dy.device);
    if (s.denseRows) {
      const dd = gatherRows(dy, s.denseRows);
      const gd = this.dense.backward(dd);
      scatterRows(gd, s.denseRows, s.T, { out: dx });
      dd.dispose();
      gd.dispose();
    }
    if (s.n > 0) {
      const dm = dy.slice(s.lo, s.lo + s.n), xm = dx.slice(s.lo, s.lo + s.n);
      const gm = this.moe.backward(dm);
      copy_(xm, gm);
      for (const t of [dm, xm, gm]) t.dispose();
    }
    this.clearSaved();
    return dx;
  }

  clearSaved(): void {
    this.#saved?.denseRows?.dispose();
    this.#saved = null;
    this.dense.clearSaved();
    this.moe.clearSaved();
  }
}
