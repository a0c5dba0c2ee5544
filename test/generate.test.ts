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

describe('prefill', () => {
  const imageCfg = (blocks: mixt.BlockKind[]) => ({ ...cfgOf(blocks), imagePositions: { modality: 'image', size: 16 } });
  const kinds: [string, mixt.ModelConfig][] = [
    ['mot', cfgOf(['mot', 'mot'])], ['mod', cfgOf(['mot', 'mod'])], ['moe', cfgOf(['moe', 'mot'])], ['mot+image positions', imageCfg(['mot', 'mod'])],
  ];
  test.each(kinds)('%s: a prompt in one pass gives the logits and caches of token-by-token decoding', async (_, cfg) => {
    const model = new Model(cfg, { device: Device.cpu, seed: 13 });
    const rng = hostRandom(4);
    // random prompts that cross modalities (text 0..39, picture 40..48, tone 49..65) and end in a picture
    const prompt = [1, ...Array.from({ length: 13 }, () => Math.floor(rng() * 66)), ...Array.from({ length: 4 }, () => 40 + Math.floor(rng() * 9))];
    using one = new Decoder(model);
    using each = new Decoder(model);
    let a = await one.prefill(prompt);
    let b: Float32Array = new Float32Array(0);
    for (const t of prompt) b = await each.step(t);
    expect(one.position).toBe(prompt.length);
    expect(one.caches.map((c) => c.length)).toEqual(each.caches.map((c) => c.length));
    const modOf = tokenModalities(model);
    const seq = [...prompt];
    for (let i = 0; i < 8; i++) {
      let diff = 0;
      for (let j = 0; j < a.length; j++) diff = Math.max(diff, Math.abs(a[j] - b[j]));
      expect(diff).toBeLessThan(1e-4);
      // and both equal the full re-computation of the sequence so far
      const full = await model.lastLogits(
        new Batch({ modality: Int32Array.from(seq, (t) => modOf[t]), docIds: new Int32Array(seq.length), positions: Int32Array.from(seq, (_, j) => j) }, 3, Device.cpu),
        Int32Array.from(seq),
      );
      for (let j = 0; j < a.length; j++) diff = Math.max(diff, Math.abs(a[j] - full[j]));
      expect(diff).toBeLessThan(1e-4);
      const next = 40 + Math.floor(rng() * 9); // continue the picture, so its positions carry on
      seq.push(next);
      a = await one.step(next);
      b = await each.step(next);
    }
    model.dispose();
  });

  test('prefill after the start goes token by token; bad tokens are refused by name', async () => {
    const model = new Model(cfgOf(['mot']), { device: Device.cpu, seed: 2 });
    using a = new Decoder(model);
    using b = new Decoder(model);
    const x = await a.prefill([1, 20, 21]);
    const y = await a.prefill([22, 23]);
    await b.prefill([1, 20, 21]);
    await b.step(22);
    const z = await b.step(23);
    expect(Math.max(...Array.from(y, (v, i) => Math.abs(v - z[i])))).toBeLessThan(1e-4);
    expect(x.length).toBe(model.cfg.vocabSize);
    await expect(a.prefill([])).rejects.toThrow(/Decoder.prefill: argument "tokens" expected at least one token/);
    await expect(a.prefill([1, 2.5])).rejects.toThrow(/Decoder.prefill: argument "tokens" expected an id in \[0, \d+\), received 2.5/);
    await expect(a.step(-1)).rejects.toThrow(/Decoder.step: argument "token" expected an id/);
    model.dispose();
  });
});
