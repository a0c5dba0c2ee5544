// Global self-attention of a Mixture-of-Transformers layer: Q/K/V/O projections untied by modality
// (grouped GEMMs over the grouped residual stream), optional per-modality QK-norm, RoPE, then one
// attention over the whole packed sequence in original token order with the batch's masks
// (causal, documents, bidirectional image spans). GQA: kvHeads divides heads.
import { Tensor } from '../core/tensor';
import { add, attention, attentionBackward, rope } from '../ops';
import { Batch } from './batch';
import { KVCache } from './kv_cache';
import { InitContext } from './init';
import { GroupedLinear } from './linear';
import { Module, release } from './module';
import { ModalityNorm, NormKind } from './norm';
import { Parameter } from './parameter';

export interface AttentionConfig {
  dModel: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  qkNorm: boolean;
  normKind: NormKind;
  ropeTheta: number;
  groups: number; // modalities
  outStd: number; // init std of the output projection (scaled by depth)
}

interface Saved {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  out: Tensor;
  lse: Tensor;
}

export class GroupedAttention extends Module {
  readonly wq: GroupedLinear;
  readonly wk: GroupedLinear;
  readonly wv: GroupedLinear;
  readonly wo: GroupedLinear;
  readonly qNorm: ModalityNorm | null;
  readonly kNorm: ModalityNorm | null;
  #saved: Saved | null = null;
  #batch: Batch | null = null;

  constructor(readonly name: string, readonly cfg: AttentionConfig, init: InitContext, computeDtype: Tensor['dtype']) {
    super();
    const { dModel: d, heads: h, kvHeads: hk, headDim: dh, groups: g } = cfg;
    this.wq = new GroupedLinear(`${name}.wq`, g, d, h * dh, init, computeDtype);
    this.wk = new GroupedLinear(`${name}.wk`, g, d, hk * dh, init, computeDtype);
    this.wv = new GroupedLinear(`${name}.wv`, g, d, hk * dh, init, computeDtype);
    this.wo = new GroupedLinear(`${name}.wo`, g, h * dh, d, init, computeDtype, cfg.outStd);
    this.qNorm = cfg.qkNorm ? new ModalityNorm(`${name}.q_norm`, cfg.normKind, g, dh, init, computeDtype) : null;
    this.kNorm = cfg.qkNorm ? new ModalityNorm(`${name}.k_norm`, cfg.normKind, g, dh, init, computeDtype) : null;
  }

  parameters(): Parameter[] {
    const ps = [this.wq, this.wk, this.wv, this.wo].flatMap((l) => l.parameters());
    if (this.qNorm) ps.push(...this.qNorm.parameters(), ...this.kNorm!.parameters());
    return ps;
  }

  // Projects grouped rows [T, d] to one head layout in original order [T, heads, headDim], roped.
  private project(lin: GroupedLinear, norm: ModalityNorm | null, xn: Tensor, batch: Batch, heads: number, roped: boolean): Tensor {
    const { headDim: dh } = this.cfg;
    const groups = this.cfg.groups;
    let g = lin.forward(xn, batch.offsets(groups));
    if (norm) {
      const rows = g.reshape([batch.T * heads, dh]);
      const normed = norm.forward(rows, batch.rowIdsRepeated(groups, heads));
      rows.dispose();
      g.dispose();
      g = normed.reshape([batch.T, heads * dh]);
      normed.dispose();
    }
    const o = batch.toOriginal(g);
    g.dispose();
    const o3 = o.reshape([batch.T, heads, dh]);
    o.dispose();
    if (!roped) return o3;
    const r = rope(o3, batch.positions, { theta: this.cfg.ropeTheta });
    o3.dispose();
    return r;
  }

  // xn: normed input, grouped order [T, d]; returns the output projection, grouped order [T, d].
  forward(xn: Tensor, batch: Batch): Tensor {
    this.clearSaved();
    const { heads: h, kvHeads: hk, headDim: dh } = this.cfg;
    const q = this.project(this.wq, this.qNorm, xn, batch, h, true);
    const k = this.project(this.wk, this.kNorm, xn, batch, hk, true);
    const v = this.project(this.wv, null, xn, batch, hk, false);
    const { out, lse } = attention(q, k, v, batch.mask);
    const flat = out.reshape([batch.T, h * dh]);
    const og = batch.toGrouped(flat);
    flat.dispose();
    const y = this.wo.forward(og, batch.offsets(this.cfg.groups));
    og.dispose();
    this.#saved = { q, k, v, out, lse };
    this.#batch = batch;
    return y;
  }

  // Incremental decoding (nothing is saved): the new tokens' roped keys and values join the cache.
  // One token (grouped = original order) attends over every cached token; several tokens (a prompt's
  // prefill, into an empty cache) attend causally among themselves in one pass.
  decode(xn: Tensor, batch: Batch, cache: KVCache): Tensor {
    const { heads: h, kvHeads: hk, headDim: dh } = this.cfg;
    if (batch.T > 1 && cache.length) throw new Error(`${this.name}: a prefill of ${batch.T} tokens needs an empty cache (it holds ${cache.length})`);
    const q = this.project(this.wq, this.qNorm, xn, batch, h, true);
    const k = this.project(this.wk, this.kNorm, xn, batch, hk, true);
    const v = this.project(this.wv, null, xn, batch, hk, false);
    cache.append(k, v);
    let out: Tensor;
    if (batch.T === 1) out = cache.attend(q);
    else {
      const r = attention(q, k, v, batch.mask);
      r.lse.dispose();
      out = r.out;
    }
    const flat = out.reshape([batch.T, h * dh]);
    const og = batch.T === 1 ? flat : batch.toGrouped(flat);
    const y = this.wo.forward(og, batch.offsets(this.cfg.groups));
    for (const t of new Set([q, k, v, out, flat, og])) t.dispose();
    this.clearSaved();
    return y;
  }

  // Back through one projection: original-order head gradient -> grouped input gradient.
  private unproject(lin: GroupedLinear, norm: ModalityNorm | null, d: Tensor, batch: Batch, heads: number, roped: boolean): Tensor {
    const { headDim: dh } = this.cfg;
    let dd = d;
    if (roped) dd = rope(d, batch.positions, { theta: this.cfg.ropeTheta, inverse: true });
    const flat = dd.reshape([batch.T, heads * dh]);
    if (dd !== d) dd.dispose();
    let g = batch.toGrouped(flat);
    flat.dispose();
    if (norm) {
      const rows = g.reshape([batch.T * heads, dh]);
      const dn = norm.backward(rows);
      rows.dispose();
      g.dispose();
      g = dn.reshape([batch.T, heads * dh]);
      dn.dispose();
    }
    const dx = lin.backward(g);
    g.dispose();
    return dx;
  }

  backward(dy: Tensor): Tensor {
    const s = this.#saved, batch = this.#batch;
    if (!s || !batch) throw new Error(`${this.name}: backward without a forward`);
    const { heads: h, kvHeads: hk, headDim: dh } = this.cfg;
    const dog = this.wo.backward(dy);
    const dof = batch.toOriginal(dog);
    dog.dispose();
    const dout = dof.reshape([batch.T, h, dh]);
    dof.dispose();
    const { dq, dk, dv } = attentionBackward(s.q, s.k, s.v, s.out, dout, s.lse, batch.mask);
    dout.dispose();
    this.#saved = release(this.#saved); // the projections keep their own saved inputs
    const dxq = this.unproject(this.wq, this.qNorm, dq, batch, h, true);
    const dxk = this.unproject(this.wk, this.kNorm, dk, batch, hk, true);
    const dxv = this.unproject(this.wv, null, dv, batch, hk, false);
    dq.dispose();
    dk.dispose();
    dv.dispose();
    add(dxq, dxk, dxq);
    add(dxq, dxv, dxq);
    dxk.dispose();
    dxv.dispose();
    return dxq;
  }

  clearSaved(): void {
    this.#saved = release(this.#saved);
    this.#batch = null;
    for (const l of [this.wq, this.wk, this.wv, this.wo]) l.clearSaved();
    this.qNorm?.clearSaved();
    this.kNorm?.clearSaved();
  }
}

