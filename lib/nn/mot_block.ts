// The Mixture-of-Transformers block: every non-embedding parameter untied by modality (attention
// norm, Q/K/V/O, FFN norm, FFN), global attention over the whole sequence. Two norm placements:
//   'post' (the MoT paper's): h = x + Norm_attn^m(W_O^m . Attn(x));  y = h + Norm_ffn^m(FFN^m(h))
//   'pre':                    h = x + W_O^m . Attn(Norm_attn^m(x));  y = h + FFN^m(Norm_ffn^m(h))
// With one modality it is the dense transformer block, on the same code path.
// The residual stream x is in grouped order (see Batch).
import { Tensor } from '../core/tensor';
import { add } from '../ops';
import { GroupedAttention } from './attention';
import { KVCache } from './kv_cache';
import { Batch } from './batch';
import { FeedForward, GroupedSwiGLU } from './ffn';
import { InitContext } from './init';
import { Module } from './module';
import { MoEFeedForward, ModalityExpertFFN, MoeConfig } from './moe';
import { ModalityNorm, NormKind } from './norm';
import { Parameter } from './parameter';

// f(t), then t is freed: chains of backward steps without leaking the intermediates.
function through(t: Tensor, f: (x: Tensor) => Tensor): Tensor {
  const r = f(t);
  t.dispose();
  return r;
}

export type NormPlacement = 'pre' | 'post';

export interface BlockConfig {
  dModel: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffnHidden: number;
  modalities: number;
  normKind: NormKind;
  placement: NormPlacement;
  qkNorm: boolean;
  ropeTheta: number;
  layers: number; // depth of the model, to scale output-projection init
  // the feed-forward: per-group SwiGLU (default), experts shared by all rows, or experts for one
  // modality beside the others' own FFNs (MoT + MoE)
  ffn?: { kind: 'dense' } | { kind: 'moe'; moe: MoeConfig } | { kind: 'modality-moe'; moe: MoeConfig; modality: number };
}

// A residual block of the model: forward in grouped order, explicit backward.
export interface Block extends Module {
  forward(x: Tensor, batch: Batch): Tensor;
  backward(dy: Tensor): Tensor;
}

export class MoTBlock extends Module implements Block {
  readonly attnNorm: ModalityNorm;
  readonly attn: GroupedAttention;
  readonly ffnNorm: ModalityNorm;
  readonly ffn: FeedForward;
  #batch: Batch | null = null;

  constructor(readonly name: string, readonly cfg: BlockConfig, init: InitContext, computeDtype: Tensor['dtype']) {
    super();
    const m = cfg.modalities;
    const outStd = 0.02 / Math.sqrt(2 * cfg.layers);
    this.attnNorm = new ModalityNorm(`${name}.attn_norm`, cfg.normKind, m, cfg.dModel, init, computeDtype);
    this.attn = new GroupedAttention(
      `${name}.attn`,
      { dModel: cfg.dModel, heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: cfg.headDim, qkNorm: cfg.qkNorm, normKind: cfg.normKind, ropeTheta: cfg.ropeTheta, groups: m, outStd },
      init,
      computeDtype,
    );
    this.ffnNorm = new ModalityNorm(`${name}.ffn_norm`, cfg.normKind, m, cfg.dModel, init, computeDtype);
    const f = cfg.ffn ?? { kind: 'dense' };
    const dense = () => new GroupedSwiGLU(`${name}.ffn`, m, cfg.dModel, cfg.ffnHidden, init, computeDtype, outStd);
    if (f.kind === 'dense') this.ffn = dense();
    else if (f.kind === 'moe') this.ffn = new MoEFeedForward(`${name}.moe`, cfg.dModel, f.moe, init, computeDtype, outStd);
    else this.ffn = new ModalityExpertFFN(dense(), new MoEFeedForward(`${name}.moe`, cfg.dModel, f.moe, init, computeDtype, outStd), f.modality);
  }

  parameters(): Parameter[] {
    return [...this.attnNorm.parameters(), ...this.attn.parameters(), ...this.ffnNorm.parameters(), ...this.ffn.parameters()];
  }

  forward(x: Tensor, batch: Batch): Tensor {
    this.#batch = batch;
    return this.residual(x, batch, (xn) => this.attn.forward(xn, batch));
  }

  // One new token (batch of 1) through the block, attending over the cached keys and values.
  decode(x: Tensor, batch: Batch, cache: KVCache): Tensor {
    const y = this.residual(x, batch, (xn) => this.attn.decode(xn, batch, cache));
    this.clearSaved();
    return y;
  }

  // The two residual sub-layers around a given attention.
  private residual(x: Tensor, batch: Batch, attend: (xn: Tensor) => Tensor): Tensor {
    const m = this.cfg.modalities;
    const ids = batch.rowIds(m);
    const pre = this.cfg.placement === 'pre';
    // attention sub-layer
    let a: Tensor;
    if (pre) {
      const xn = this.attnNorm.forward(x, ids);
      a = attend(xn);
      xn.dispose();
    } else {
      const raw = attend(x);
      a = this.attnNorm.forward(raw, ids);
      raw.dispose();
    }
    const h = add(x, a);
    a.dispose();
    // feed-forward sub-layer
    let f: Tensor;
    if (pre) {
      const hn = this.ffnNorm.forward(h, ids);
      f = this.ffn.forward(hn, batch);
      hn.dispose();
    } else {
      const raw = this.ffn.forward(h, batch);
      f = this.ffnNorm.forward(raw, ids);
      raw.dispose();
    }
    const y = add(h, f, f);
    h.dispose();
    return y;
  }

  backward(dy: Tensor): Tensor {
    if (!this.#batch) throw new Error(`${this.name}: backward without a forward`);
    const pre = this.cfg.placement === 'pre';
    // y = h + F(h): dh = dy + dF/dh . dy
    const dhF = pre ? through(this.ffn.backward(dy), (t) => this.ffnNorm.backward(t)) : through(this.ffnNorm.backward(dy), (t) => this.ffn.backward(t));
    const dh = add(dy, dhF, dhF);
    // h = x + A(x): dx = dh + dA/dx . dh
    const dxA = pre ? through(this.attn.backward(dh), (t) => this.attnNorm.backward(t)) : through(this.attnNorm.backward(dh), (t) => this.attn.backward(t));
    const dx = add(dh, dxA, dxA);
    dh.dispose();
    this.#batch = null;
    return dx;
  }

  clearSaved(): void {
    this.#batch = null;
    this.attnNorm.clearSaved();
    this.attn.clearSaved();
    this.ffnNorm.clearSaved();
    this.ffn.clearSaved();
  }
}
