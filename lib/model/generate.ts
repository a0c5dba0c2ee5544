// Autoregressive sampling from a model, one sequence at a time: each step runs the model over
// the prefix and samples the next token from the last logits, optionally restricted to a token
// range (the modality expected next) and with temperature / top-k.
import { Generator, hostRandom } from '../core/random';
import { Batch } from '../nn/batch';
import { Model } from './model';

export interface SampleOptions {
  temperature?: number; // 0: greedy
  topK?: number;
  range?: [number, number]; // allowed token ids [lo, hi)
  seed?: number;
}

export function pickToken(logits: Float32Array, opts: SampleOptions, uniform: () => number): number {
  const [lo, hi] = opts.range ?? [0, logits.length];
  const temperature = opts.temperature ?? 1;
  let best = lo;
  for (let t = lo; t < hi; t++) if (logits[t] > logits[best]) best = t;
  if (temperature <= 0) return best;
  let ids = Array.from({ length: hi - lo }, (_, i) => lo + i);
  if (opts.topK && opts.topK < ids.length) ids = ids.sort((a, b) => logits[b] - logits[a]).slice(0, opts.topK);
  const weights = ids.map((t) => Math.exp((logits[t] - logits[best]) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let u = uniform() * total;
  for (let i = 0; i < ids.length; i++) {
    u -= weights[i];
    if (u <= 0) return ids[i];
  }
  return ids[ids.length - 1];
}

// Modality id of every token id, from the model's vocabulary ranges.
export function tokenModalities(model: Model): Int32Array {
  const m = new Int32Array(model.cfg.vocabSize);
  model.cfg.modalities.forEach((mod, i) => m.fill(i, mod.range[0], mod.range[1]));
  return m;
}

// Appends `count` sampled tokens to `prompt`; returns only the new tokens.
export async function generate(model: Model, prompt: number[], count: number, opts: SampleOptions = {}): Promise<number[]> {
  const modOf = tokenModalities(model);
  const uniform = hostRandom(opts.seed ?? new Generator().seed);
  const seq = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const tokens = Int32Array.from(seq);
    const batch = new Batch(
      { modality: Int32Array.from(tokens, (t) => modOf[t]), docIds: new Int32Array(tokens.length), positions: Int32Array.from(tokens, (_, j) => j) },
      model.modalities,
      model.device,
    );
    const logits = await model.lastLogits(batch, tokens);
    batch.dispose();
    const next = pickToken(logits, opts, uniform);
    seq.push(next);
    out.push(next);
  }
  return out;
}
