// Transfusion sampling: denoise an image after a prompt with DDIM (eta = 0) in a few steps, with
// classifier-free guidance (eps = eps_uncond + w (eps_cond - eps_uncond); the unconditional pass
// drops the prompt, as caption dropout did in training).
import { Generator } from '../core/random';
import { Batch } from '../nn/batch';
import { alphaBar } from '../nn/diffusion';
import { randn } from '../ops';
import { tokenModalities } from './generate';
import { Model } from './model';

export interface DiffusionSampleOptions {
  steps?: number; // denoising steps (default 50)
  guidance?: number; // classifier-free guidance weight (default 3; 1 = no guidance)
  seed?: number;
  patchToken: number; // placeholder id at patch positions
  patches: number; // patches per image
  beginImage: number; // id that opens an image
  beginSequence: number;
}

// Latents [patches * patchDim] of an image generated after `prompt` (caption tokens).
export async function sampleImage(model: Model, prompt: number[], o: DiffusionSampleOptions): Promise<Float32Array> {
  const tf = model.cfg.transfusion;
  if (!tf) throw new RangeError('sampleImage: this model has no Transfusion image path');
  const steps = Math.max(1, Math.min(tf.timesteps, o.steps ?? 50)), w = o.guidance ?? 3;
  const P = o.patches, pd = tf.patchDim;
  const modOf = tokenModalities(model);
  const noise = randn([P * pd], { generator: new Generator(o.seed ?? 1) });
  let x = Float32Array.from(await noise.toArray());
  noise.dispose();
  const predict = async (prefix: number[], xt: Float32Array, t: number) => {
    const tokens = Int32Array.from([...prefix, ...new Array(P).fill(o.patchToken)]);
    const positions = Int32Array.from({ length: P }, (_, i) => prefix.length + i);
    const span = Int32Array.from(tokens, (_, i) => (i >= prefix.length ? 0 : -1));
    const batch = new Batch(
      { modality: Int32Array.from(tokens, (tk) => modOf[tk]), docIds: new Int32Array(tokens.length), positions: Int32Array.from(tokens, (_, i) => i), spanIds: span },
      model.modalities,
      model.device,
    );
    const eps = await model.predictNoise(batch, tokens, xt, positions, t);
    batch.dispose();
    return eps;
  };
  const cond = [o.beginSequence, ...prompt, o.beginImage], uncond = [o.beginSequence, o.beginImage];
  const times = Array.from({ length: steps }, (_, i) => Math.round(((tf.timesteps - 1) * (steps - 1 - i)) / Math.max(1, steps - 1)));
  for (let i = 0; i < steps; i++) {
    const t = times[i], tPrev = i + 1 < steps ? times[i + 1] : -1;
    const ec = await predict(cond, x, t);
    const eu = w === 1 ? ec : await predict(uncond, x, t);
    const ab = alphaBar(t, tf.timesteps), abPrev = tPrev >= 0 ? alphaBar(tPrev, tf.timesteps) : 1;
    const next = new Float32Array(x.length);
    for (let j = 0; j < x.length; j++) {
      const eps = eu[j] + w * (ec[j] - eu[j]);
      // predicted clean value, clipped to the data range; the noise direction re-derived from it
      const x0 = Math.max(-1, Math.min(1, (x[j] - Math.sqrt(1 - ab) * eps) / Math.sqrt(ab)));
      const e2 = ab < 1 ? (x[j] - Math.sqrt(ab) * x0) / Math.sqrt(1 - ab) : eps;
      next[j] = Math.sqrt(abPrev) * x0 + Math.sqrt(1 - abPrev) * e2;
    }
    x = next;
  }
  return x;
}
