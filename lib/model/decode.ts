// Incremental decoding of one sequence with a key/value cache per attention layer: each token
// costs one position through the model (attention over the cached keys and values), not a re-run
// over the prefix. Mixture-of-Depths blocks route each token by their causal decision, so a cached
// run gives what the full causal re-computation (Model.lastLogits) gives.
import { Batch } from '../nn/batch';
import { KVCache } from '../nn/kv_cache';
import { MoDBlock } from '../nn/mod';
import { MoTBlock } from '../nn/mot_block';
import { cast, gatherRows, matmul, tensor } from '../ops';
import { tokenModalities } from './generate';
import { Model } from './model';

export class Decoder {
  readonly caches: KVCache[];
  #modOf: Int32Array;
  position = 0;

  constructor(readonly model: Model) {
    const c = model.cfg;
    this.caches = model.blocks.map(() => new KVCache(c.kvHeads, c.headDim, model.computeDtype, model.device));
    this.#modOf = tokenModalities(model);
  }

  // Feeds one token at the next position; resolves to the next-token logits [V] (f32).
  async step(token: number): Promise<Float32Array> {
    const m = this.model;
    if (!Number.isInteger(token) || token < 0 || token >= m.cfg.vocabSize) throw new RangeError(`Decoder.step: argument "token" expected an id in [0, ${m.cfg.vocabSize}), received ${token}`);
    if (this.position >= m.cfg.maxSeqLen) throw new RangeError(`Decoder.step: the sequence reached the model's maxSeqLen (${m.cfg.maxSeqLen})`);
    const batch = new Batch({ modality: Int32Array.of(this.#modOf[token]), docIds: Int32Array.of(0), positions: Int32Array.of(this.position) }, m.modalities, m.device);
    const id = tensor(Int32Array.of(token), [1], { dtype: 'i32', device: m.device });
    let x = gatherRows(m.embed.compute, id);
    id.dispose();
    try {
      for (let i = 0; i < m.blocks.length; i++) {
        const b = m.blocks[i];
        const y = b instanceof MoDBlock ? await b.decode(x, batch, this.caches[i]) : (b as MoTBlock).decode(x, batch, this.caches[i]);
        x.dispose();
        x = y;
      }
      const h = m.finalNorm.forward(x, batch.rowIds(m.modalities));
      m.finalNorm.clearSaved();
      const logits = matmul(h, m.head.compute, { transB: true });
      const f = logits.dtype === 'f32' ? logits : cast(logits, 'f32');
      const out = Float32Array.from((await f.toArray()) as Float32Array);
      for (const t of new Set([h, logits, f])) t.dispose();
      this.position++;
      return out;
    } finally {
      x.dispose();
      batch.dispose();
    }
  }

  // The sequence so far, to return to: generation of alternatives from one prefix, benchmarks.
  mark(): { position: number; lengths: number[] } {
    return { position: this.position, lengths: this.caches.map((c) => c.length) };
  }
  rewind(m: { position: number; lengths: number[] }): void {
    if (m.position > this.position) throw new RangeError(`Decoder.rewind: argument "mark" is ahead of the sequence (${m.position} > ${this.position})`);
    this.position = m.position;
    this.caches.forEach((c, i) => (c.length = m.lengths[i]));
  }

  dispose(): void {
    for (const c of this.caches) c.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
