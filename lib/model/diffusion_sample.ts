// Transfusion sampling: denoise an image after a prompt with DDIM (eta = 0) in a few steps, with
// classifier-free guidance (out = out_uncond + w (out_cond - out_uncond) on the network's output,
// eps, v or x0; the unconditional pass drops the prompt, as caption dropout did in training).
import { Generator } from '../core/random';
import { Batch } from '../nn/batch';
import { alphaBar } from '../nn/diffusion';
import { DiffusionPrediction } from './config';
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
  const noise = randn([P * pd], { generator: new Generator(o.seed ?? 1) });
  let x: Float32Array = Float32Array.from(await noise.toArray());
  noise.dispose();
  const predict = (prefix: number[], xt: Float32Array, t: number) => networkOutput(model, prefix, xt, t, o);
  const cond = [o.beginSequence, ...prompt, o.beginImage], uncond = [o.beginSequence, o.beginImage];
  const times = Array.from({ length: steps }, (_, i) => Math.round(((tf.timesteps - 1) * (steps - 1 - i)) / Math.max(1, steps - 1)));
  const prediction = tf.prediction ?? 'eps';
  for (let i = 0; i < steps; i++) {
    const t = times[i], tPrev = i + 1 < steps ? times[i + 1] : -1;
    const oc = await predict(cond, x, t);
    const ou = w === 1 ? oc : await predict(uncond, x, t);
    const ab = alphaBar(t, tf.timesteps), abPrev = tPrev >= 0 ? alphaBar(tPrev, tf.timesteps) : 1;
    const out = Float32Array.from(oc, (c, j) => ou[j] + w * (c - ou[j]));
    x = ddimStep(x, out, prediction, ab, abPrev);
  }
  return x;
}

// The network's output (eps, v or x0) [patches * patchDim] for a picture of latents x_t at step t after
// `prefix` (the tokens up to and including the one that opens the picture).
export async function networkOutput(model: Model, prefix: number[], xt: Float32Array, t: number, o: Pick<DiffusionSampleOptions, 'patchToken' | 'patches'>): Promise<Float32Array> {
  const P = o.patches, modOf = tokenModalities(model);
  const tokens = Int32Array.from([...prefix, ...new Array(P).fill(o.patchToken)]);
  const positions = Int32Array.from({ length: P }, (_, i) => prefix.length + i);
  const span = Int32Array.from(tokens, (_, i) => (i >= prefix.length ? 0 : -1));
  const batch = new Batch(
    { modality: Int32Array.from(tokens, (tk) => modOf[tk]), docIds: new Int32Array(tokens.length), positions: Int32Array.from(tokens, (_, i) => i), spanIds: span },
    model.modalities,
    model.device,
  );
  try {
    return await model.predictNoise(batch, tokens, xt, positions, t);
  } finally {
    batch.dispose();
  }
}

// One DDIM (eta = 0) step from x_t at alpha-bar `ab` to `abPrev`, given the network's output: the
// clean estimate, clipped to the data range [-1, 1], and the noise direction re-derived from it.
export function ddimStep(x: Float32Array, out: Float32Array, prediction: DiffusionPrediction, ab: number, abPrev: number): Float32Array {
  if (out.length !== x.length) throw new RangeError(`ddimStep: argument "out" expected ${x.length} values (one per latent), received ${out.length}`);
  if (!(ab > 0 && ab <= 1 && abPrev >= ab && abPrev <= 1)) throw new RangeError(`ddimStep: expected 0 < ab <= abPrev <= 1, received ab ${ab}, abPrev ${abPrev}`);
  const next = new Float32Array(x.length);
  const sa = Math.sqrt(ab), sb = Math.sqrt(1 - ab);
  for (let j = 0; j < x.length; j++) {
    const x0raw = prediction === 'x0' ? out[j] : prediction === 'v' ? sa * x[j] - sb * out[j] : (x[j] - sb * out[j]) / sa;
    const x0 = Math.max(-1, Math.min(1, x0raw));
    // at abar = 1 (no noise) x_t is the picture and abPrev = 1: the noise term vanishes whatever it is
    const eps = ab < 1 ? (x[j] - sa * x0) / sb : prediction === 'v' ? sb * x[j] + sa * out[j] : prediction === 'eps' ? out[j] : 0;
    next[j] = Math.sqrt(abPrev) * x0 + Math.sqrt(1 - abPrev) * eps;
  }
  return next;
}
