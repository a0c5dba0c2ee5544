// KV-cache generation against the full causal re-computation, token for token (greedy and seeded
// sampling), for MoT, MoD and MoE models; streaming through the public generate().
import * as mixt from '../lib';
import { Device } from '../lib/core/device';
import { Generator, hostRandom } from '../lib/core/random';
import { presetConfig } from '../lib/model/config';
import { Decoder } from '../lib/model/decode';
import { generate as recompute, pickToken, tokenModalities } from '../lib/model/generate';
import { Model } from '../lib/model/model';
import { Batch } from '../lib/nn/batch';
import { SHAPES_VOCAB } from '../lib/train/data/shapes';

const cfgOf = (blocks: mixt.BlockKind[]) =>
  presetConfig('tiny', SHAPES_VOCAB, blocks, { dModel: 32, layers: blocks.length, heads: 4, kvHeads: 2, ffnHidden: 48, mod: { capacity: 0.5 } });

async function cached(model: Model, prompt: number[], count: number, opts: { temperature?: number; topK?: number; seed?: number }): Promise<number[]> {
  using dec = new Decoder(model);
  const uniform = hostRandom(opts.seed ?? new Generator().seed);
  let logits: Float32Array = new Float32Array(0);
  for (const t of prompt) logits = await dec.step(t);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const next = pickToken(logits, opts, uniform);
    out.push(next);
    if (i + 1 < count) logits = await dec.step(next);
  }
  return out;
}

describe('KV-cache generation', () => {
  const kinds: [string, mixt.BlockKind[]][] = [['mot', ['mot', 'mot']], ['mod', ['mot', 'mod']], ['moe', ['moe', 'mot']], ['mode-staged', ['mode-staged', 'mot+moe']]];
  test.each(kinds)('%s: cached logits equal the full re-computation; tokens match greedy and seeded', async (_, blocks) => {
    const model = new Model(cfgOf(blocks), { device: Device.cpu, seed: 11 });
    const prompt = [1, 20, 21, 22, 23, 24];
    // logits at every position, cached vs full
    const dec = new Decoder(model);
    const modOf = tokenModalities(model);
    const seq = [...prompt, 30, 40, 50, 60, 65, 31, 41];
    for (let i = 0; i < seq.length; i++) {
      const a = await dec.step(seq[i]);
      const b = await model.lastLogits(
        new Batch({ modality: Int32Array.from(seq.slice(0, i + 1), (t) => modOf[t]), docIds: new Int32Array(i + 1), positions: Int32Array.from({ length: i + 1 }, (_, j) => j) }, 3, Device.cpu),
        Int32Array.from(seq.slice(0, i + 1)),
      );
      let diff = 0;
      for (let j = 0; j < a.length; j++) diff = Math.max(diff, Math.abs(a[j] - b[j]));
      expect(diff).toBeLessThan(1e-4);
    }
    dec.dispose();
    for (const opts of [{ temperature: 0 }, { temperature: 1, seed: 5 }, { temperature: 0.8, topK: 10, seed: 9 }]) {
      const want = await recompute(model, prompt, 20, opts);
      expect(await cached(model, prompt, 20, opts)).toEqual(want);
    }
    model.dispose();
  });
});
