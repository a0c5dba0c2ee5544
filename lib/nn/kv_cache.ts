// The key/value cache of one attention layer for incremental decoding: roped keys and values of
// every token seen so far, in order ([length, kvHeads, headDim], grown by doubling), and attention
// of one new query over them. Built from existing ops, so both backends serve it:
//   scores [L, H] = K . Q~^T, where Q~ [H, kvHeads*headDim] holds query head j in the block of its
//   kv head (GQA) and zeros elsewhere; then a max-shifted softmax over L and P^T . V, from which
//   each query head keeps its own kv head's block.
import { Device } from '../core/device';
import { DType } from '../core/dtype';
import { Tensor } from '../core/tensor';
import { cast, copy_, gatherRows, matmul, reduce, rowScale, scatterRows, sub, tensor, unary } from '../ops';

export class KVCache {
  #k: Tensor | null = null;
  #v: Tensor | null = null;
  #headIndex: Tensor | null = null;
  length = 0;

  constructor(readonly kvHeads: number, readonly headDim: number, readonly dtype: DType, readonly device: Device) {}

  get capacity(): number {
    return this.#k ? this.#k.shape[0] : 0;
  }

  // Appends n rows of roped keys and values [n, kvHeads, headDim].
  append(k: Tensor, v: Tensor): void {
    const n = k.shape[0];
    if (this.length + n > this.capacity) this.#grow(Math.max(16, 2 * (this.length + n)));
    const kd = this.#k!.slice(this.length, this.length + n), vd = this.#v!.slice(this.length, this.length + n);
    copy_(kd, k);
    copy_(vd, v);
    kd.dispose();
    vd.dispose();
    this.length += n;
  }

  #grow(cap: number): void {
    const make = (old: Tensor | null) => {
      const t = Tensor.empty([cap, this.kvHeads, this.headDim], this.dtype, this.device);
      if (old && this.length) {
        const dst = t.slice(0, this.length), src = old.slice(0, this.length);
        copy_(dst, src);
        dst.dispose();
        src.dispose();
      }
      old?.dispose();
      return t;
    };
    this.#k = make(this.#k);
    this.#v = make(this.#v);
  }

  // Row of query head j in the [H * kvHeads, headDim] block layout: j * kvHeads + (its kv head).
  #index(heads: number): Tensor {
    if (!this.#headIndex || this.#headIndex.shape[0] !== heads) {
      this.#headIndex?.dispose();
      const g = heads / this.kvHeads;
      this.#headIndex = tensor(Int32Array.from({ length: heads }, (_, j) => j * this.kvHeads + Math.floor(j / g)), [heads], { dtype: 'i32', device: this.device });
    }
    return this.#headIndex;
  }

  // Attention of one query q [1, H, D] over every cached token (all visible); returns [1, H, D].
  attend(q: Tensor, scale = 1 / Math.sqrt(this.headDim)): Tensor {
    const [, H, D] = q.shape, Hk = this.kvHeads, L = this.length;
    const idx = this.#index(H);
    const qr = q.reshape([H, D]);
    const qb = scatterRows(qr, idx, H * Hk);
    const qbt = qb.reshape([H, Hk * D]);
    const k = this.#k!.slice(0, L), v = this.#v!.slice(0, L);
    const kf = k.reshape([L, Hk * D]), vf = v.reshape([L, Hk * D]);
    const s = matmul(kf, qbt, { transB: true, alpha: scale }); // [L, H]
    const mx = reduce('max', s, { axis: 0 });
    const e = unary('exp', sub(s, mx, s), s);
    const sum = reduce('sum', e, { axis: 0 });
    const o = matmul(e, vf, { transA: true }); // [H, Hk * D]
    const ob = o.reshape([H * Hk, D]);
    const oh = gatherRows(ob, idx); // [H, D]
    const inv = unary('reciprocal', sum);
    const w = q.dtype === 'f64' || inv.dtype === 'f32' ? inv : cast(inv, 'f32');
    const out = rowScale(oh, w);
    const y = out.reshape([1, H, D]);
    for (const t of new Set([qr, qb, qbt, k, v, kf, vf, s, mx, sum, o, ob, oh, inv, w, out])) t.dispose();
    return y;
  }

  dispose(): void {
    for (const t of [this.#k, this.#v, this.#headIndex]) t?.dispose();
    this.#k = this.#v = this.#headIndex = null;
    this.length = 0;
  }
}
