// Inference: streaming generation with a key/value cache, per-modality log-probabilities of a
// batch, and image sampling for Transfusion models. Every model computation goes through the
// model's queue one decoding step at a time: concurrent requests interleave between steps, each
// with its own cache, and never share state inside a step.
import { typeError } from '../core/errors';
import { Generator, hostRandom } from '../core/random';
import { Decoder } from '../model/decode';
import { sampleImage } from '../model/diffusion_sample';
import { pickToken, tokenModalities } from '../model/generate';
import { TOK } from '../train/data/shapes';
import { PATCHES, PATCH_TOKEN, latentsToRgb } from '../train/data/transfusion';
import { MixtModel } from './model';

export interface GenerateOptions {
  /** Tokens to generate (default 20). */
  maxTokens?: number;
  /** 0: greedy; default 1. */
  temperature?: number;
  topK?: number;
  /** Nucleus sampling: the smallest set of tokens holding this much probability (default 1: all). */
  topP?: number;
  /** Seed of the sampler: the same seed gives the same tokens (default: random). */
  seed?: number;
  /** Stops the stream after the token being computed. */
  signal?: AbortSignal;
  /** Token ids that end the stream (the stop token is yielded). */
  stop?: number[];
}

function checkPrompt(fn: string, model: MixtModel, prompt: ArrayLike<number>): number[] {
  if (!(model instanceof MixtModel)) throw typeError(fn, 'model', 'a model from createModel or loadModel', model);
  const V = model.config.vocabSize;
  if (!prompt || typeof prompt !== 'object' || typeof prompt.length !== 'number') throw typeError(fn, 'prompt', 'an array of token ids', prompt);
  const p = Array.from(prompt);
  if (!p.length) throw new RangeError(`${fn}: argument "prompt" expected at least one token, received none`);
  for (const t of p) if (!Number.isInteger(t) || t < 0 || t >= V) throw new RangeError(`${fn}: argument "prompt" expected token ids in [0, ${V}), received ${t}`);
  return p;
}

function checkGenerateOptions(o: GenerateOptions): void {
  const fn = 'generate';
  if (typeof o !== 'object' || o === null) throw typeError(fn, 'options', 'an object', o);
  if (o.maxTokens !== undefined && !(Number.isSafeInteger(o.maxTokens) && o.maxTokens >= 0)) throw typeError(fn, 'options.maxTokens', 'an integer >= 0', o.maxTokens);
  if (o.temperature !== undefined && !(o.temperature >= 0)) throw typeError(fn, 'options.temperature', 'a number >= 0', o.temperature);
  if (o.topK !== undefined && !(Number.isSafeInteger(o.topK) && o.topK >= 1)) throw typeError(fn, 'options.topK', 'an integer >= 1', o.topK);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw typeError(fn, 'options.topP', 'a number in (0, 1]', o.topP);
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw typeError(fn, 'options.seed', 'an integer', o.seed);
}

// Keeps the most probable tokens holding `topP` of the probability; the rest get -Infinity.
export function nucleus(logits: Float32Array, topP: number, temperature: number): Float32Array {
  if (topP >= 1 || temperature <= 0) return logits;
  const ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
  const top = logits[ids[0]];
  const w = ids.map((t) => Math.exp((logits[t] - top) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  const out = new Float32Array(logits.length).fill(-Infinity);
  let acc = 0;
  for (let i = 0; i < ids.length && acc < topP * total; i++) {
    out[ids[i]] = logits[ids[i]];
    acc += w[i];
  }
  return out;
}

/**
 * Streams `maxTokens` tokens sampled after `prompt`. Each token costs one position through the
 * model (a key/value cache per layer); the prompt goes through the model once, in one pass.
 */
export async function* generate(model: MixtModel, prompt: ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<number, void, undefined> {
  checkGenerateOptions(options);
  const p = checkPrompt('generate', model, prompt);
  const count = options.maxTokens ?? 20;
  const sample = { temperature: options.temperature ?? 1, ...(options.topK ? { topK: options.topK } : {}) };
  const uniform = hostRandom(options.seed ?? new Generator().seed);
  const stop = new Set(options.stop ?? []);
  const dec = new Decoder(model.engine);
  try {
    let logits = await model.queue.run(() => dec.prefill(p)); // the prompt in one pass
    for (let i = 0; i < count && !options.signal?.aborted; i++) {
      const next = pickToken(nucleus(logits, options.topP ?? 1, sample.temperature), sample, uniform);
      yield next;
      if (stop.has(next) || i + 1 === count || options.signal?.aborted) break;
      logits = await model.queue.run(() => dec.step(next));
    }
  } finally {
    dec.dispose();
  }
}

export interface SequenceScore {
  /** log p(token[i+1] | tokens[0..i]) for i = 0 .. T-2 (natural log). */
  logProbs: Float32Array;
  /** Modality id of each scored token. */
  modalities: Int32Array;
  /** Next-token logits at every position [T][V], when asked for. */
  logits?: Float32Array[];
}

export interface ScoreReport {
  sequences: SequenceScore[];
  /** Per modality: summed log-probability, scored tokens, mean negative log-likelihood (nats). */
  modalities: { name: string; logProb: number; tokens: number; nll: number }[];
}

/** Per-modality next-token log-probabilities of each sequence of `batch` (causal, as generation sees it). */
export async function score(model: MixtModel, batch: ArrayLike<number>[], options: { logits?: boolean } = {}): Promise<ScoreReport> {
  if (!Array.isArray(batch) || !batch.length) throw typeError('score', 'batch', 'a non-empty array of token-id sequences', batch);
  const seqs = batch.map((s) => checkPrompt('score', model, s));
  const modOf = tokenModalities(model.engine);
  const names = model.config.modalities.map((m) => m.name);
  const totals = names.map((name) => ({ name, logProb: 0, tokens: 0, nll: NaN }));
  const sequences: SequenceScore[] = [];
  for (const seq of seqs) {
    const dec = new Decoder(model.engine);
    const logProbs = new Float32Array(seq.length - 1), modalities = new Int32Array(seq.length - 1);
    const all: Float32Array[] = [];
    try {
      for (let i = 0; i + 1 < seq.length; i++) {
        const l = await model.queue.run(() => dec.step(seq[i]));
        if (options.logits) all.push(l);
        let mx = -Infinity;
        for (const v of l) mx = Math.max(mx, v);
        let s = 0;
        for (const v of l) s += Math.exp(v - mx);
        const t = seq[i + 1];
        logProbs[i] = l[t] - mx - Math.log(s);
        modalities[i] = modOf[t];
        totals[modOf[t]].logProb += logProbs[i];
        totals[modOf[t]].tokens++;
      }
    } finally {
      dec.dispose();
    }
    sequences.push({ logProbs, modalities, ...(options.logits ? { logits: all } : {}) });
  }
  for (const m of totals) m.nll = m.tokens ? -m.logProb / m.tokens : NaN;
  return { sequences, modalities: totals };
}

export interface ImageOptions {
  /** Denoising steps (default 50). */
  steps?: number;
  /** Classifier-free guidance weight (default 3). */
  guidance?: number;
  seed?: number;
}

/**
 * Transfusion models: samples the continuous latents of a picture after `prompt` (caption token
 * ids) with DDIM, and their RGB pixels (8x8, the embedded corpus's patch layout).
 */
export async function generateImage(model: MixtModel, prompt: ArrayLike<number>, options: ImageOptions = {}): Promise<{ latents: Float32Array; rgb: Uint8Array }> {
  const p = checkPrompt('generateImage', model, prompt);
  if (!model.config.transfusion) throw new RangeError('generateImage: argument "model" expected a Transfusion model (config.transfusion), received a model without an image path');
  const latents = await model.queue.run(() =>
    sampleImage(model.engine, p, { steps: options.steps, guidance: options.guidance, seed: options.seed, patchToken: PATCH_TOKEN, patches: PATCHES, beginImage: TOK.boi, beginSequence: TOK.bos }),
  );
  return { latents, rgb: latentsToRgb(latents) };
}
