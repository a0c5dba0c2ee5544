// Incremental decoding of one sequence with a key/value cache per attention layer: the prompt goes
// through the model in one pass (a prefill filling the caches), then each token costs one position
// (attention over the cached keys and values), not a re-run over the prefix. Image tokens get their
// place in the picture as in training. Mixture-of-Depths blocks route each token by their causal decision, so a cached
// run gives what the full causal re-computation (Model.lastLogits) gives.
import { Batch } from '../nn/batch';
import { KVCache } from '../nn/kv_cache';
import { MoDBlock } from '../nn/mod';
import { MoTBlock } from '../nn/mot_block';
import { cast, matmul, tensor } from '../ops';
import { tokenModalities } from './generate';
import { Model } from './model';

export class Decoder {
  readonly caches: KVCache[];
  #modOf: Int32Array;
  #image = { run: 0 }; // image tokens just before the next position (their place in the picture)
  position = 0;

  constructor(readonly model: Model) {
    const c = model.cfg;
    this.caches = model.blocks.map(() => new KVCache(c.kvHeads, c.headDim, model.computeDtype, model.device));
    this.#modOf = tokenModalities(model);
  }

  // Feeds one token at the next position; resolves to the next-token logits [V] (f32).
  step(token: number): Promise<Float32Array> {
    return this.prefill([token], 'Decoder.step');
  }

  // Feeds tokens at the next positions; resolves to the next-token logits after the last [V] (f32).
  // At the start of a sequence (a prompt) they go through the model in one pass, attending causally
  // among themselves, and fill the caches; later ones go one position at a time.
  async prefill(tokens: ArrayLike<number>, fn = 'Decoder.prefill'): Promise<Float32Array> {
    const m = this.model, V = m.cfg.vocabSize;
    const ids = Int32Array.from(tokens);
    if (!ids.length) throw new RangeError(`${fn}: argument "tokens" expected at least one token, received none`);
    ids.forEach((t, i) => {
      if (tokens[i] !== t || t < 0 || t >= V) throw new RangeError(`${fn}: argument "token${ids.length > 1 ? 's' : ''}" expected an id in [0, ${V}), received ${tokens[i]}`);
    });
    if (this.position + ids.length > m.cfg.maxSeqLen) throw new RangeError(`${fn}: the sequence reached the model's maxSeqLen (${m.cfg.maxSeqLen})`);
    if (this.position > 0 && ids.length > 1) {
      let out: Float32Array = new Float32Array(0);
      for (const t of ids) out = await this.#forward(Int32Array.of(t));
      return out;
    }
    return this.#forward(ids);
  }

  // The tokens through the model at the next positions (one, or several into empty caches).
  async #forward(tokens: Int32Array): Promise<Float32Array> {
    const m = this.model, n = tokens.length;
    const batch = new Batch(
      { modality: Int32Array.from(tokens, (t) => this.#modOf[t]), docIds: new Int32Array(n), positions: Int32Array.from({ length: n }, (_, i) => this.position + i) },
      m.modalities, m.device,
    );
    const id = tensor(tokens, [n], { dtype: 'i32', device: m.device });
    const xo = m.embedTokens(id, tokens, this.#image);
    m.imagePosition?.clearSaved();
    id.dispose();
    let x = n === 1 ? xo : batch.toGrouped(xo); // one token: grouped = original order
    if (x !== xo) xo.dispose();
    try {
      for (let i = 0; i < m.blocks.length; i++) {
        const b = m.blocks[i];
        const y = b instanceof MoDBlock ? await b.decode(x, batch, this.caches[i]) : (b as MoTBlock).decode(x, batch, this.caches[i]);
        x.dispose();
        x = y;
      }
      const h = m.finalNorm.forward(x, batch.rowIds(m.modalities));
      m.finalNorm.clearSaved();
      const ho = n === 1 ? h : batch.toOriginal(h);
      const last = n === 1 ? ho : ho.slice(n - 1, n);
      const logits = matmul(last, m.head.compute, { transB: true });
      const f = logits.dtype === 'f32' ? logits : cast(logits, 'f32');
      const out = Float32Array.from((await f.toArray()) as Float32Array);
      for (const t of new Set([h, ho, last, logits, f])) t.dispose();
      this.position += n;
      return out;
    } finally {
      x.dispose();
      batch.dispose();
    }
  }

  // The sequence so far, to return to: generation of alternatives from one prefix, benchmarks.
  mark(): { position: number; lengths: number[]; imageRun: number } {
    return { position: this.position, lengths: this.caches.map((c) => c.length), imageRun: this.#image.run };
  }
  rewind(m: { position: number; lengths: number[]; imageRun: number }): void {
    if (m.position > this.position) throw new RangeError(`Decoder.rewind: argument "mark" is ahead of the sequence (${m.position} > ${this.position})`);
    this.position = m.position;
    this.#image.run = m.imageRun;
    this.caches.forEach((c, i) => (c.length = m.lengths[i]));
  }

  dispose(): void {
    for (const c of this.caches) c.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
