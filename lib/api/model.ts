// The public model: create from a preset or a config, load from a checkpoint, save, move between
// devices, count parameters, dispose everything it owns. Wraps the engine's Model and serialises
// every computation on it (training steps, generation, scoring) through one queue.
import { Device, DeviceSpec, chooseDevice } from '../core/device';
import { DType } from '../core/dtype';
import { MixtError, typeError } from '../core/errors';
import { BlockKind, ModelConfig, PRESETS, PresetName, parameterCount, presetConfig, validateConfig } from '../model/config';
import { Model } from '../model/model';
import { exportParameters, importParameters } from '../model/weights';
import { loadCheckpointAsync, restoreCheckpoint, saveCheckpoint, TrainState } from '../train/checkpoint';
import { SHAPES_VOCAB } from '../train/data/shapes';
import { AdamW } from '../train/optimizer';
import { GenerateOptions, ImageOptions, ScoreReport, generate, generateImage, score } from './generate';
import { SerialQueue } from './lock';

export interface CreateModelOptions {
  /** 'auto' | 'cpu' | 'cuda' | 'cuda:N' or a Device (default: 'cpu'). */
  device?: DeviceSpec | string;
  /** Seed of the initial weights (default 0). */
  seed?: number;
  /** Presets only: block kind of every layer, or one per layer (default 'mot'). */
  blocks?: BlockKind | BlockKind[];
  /** Presets only: the vocabulary (default: the embedded corpus's). */
  vocab?: { size: number; modalities: { name: string; range: [number, number] }[] };
  /** Presets only: fields that override the preset's config. */
  overrides?: Partial<ModelConfig>;
  /** Master weights: 'f32' (default) or 'f64' (CPU only). */
  dtype?: DType;
}

export interface ParameterCounts {
  /** Every stored parameter (a MoT model holds one copy of its blocks per modality). */
  total: number;
  /** Parameters one token uses (one modality path). */
  activePerToken: number;
}

/** Where a training run left the optimiser: `save()` writes it so training can resume. */
export interface TrainingState {
  optimizer: AdamW;
  state: () => TrainState;
}

export function resolveDevice(spec: DeviceSpec | string | undefined, fn: string): Device {
  return spec instanceof Device ? spec : chooseDevice(spec ?? 'cpu', `${fn}: options.device`).device;
}

export class MixtModel {
  #model: Model | null;
  #seed: number;
  #dtype: DType;
  /** The optimiser state of the last `train()` on this model, saved with it. */
  training: TrainingState | null = null;
  /** Queues every computation on this model: callers never interleave inside a step. */
  readonly queue = new SerialQueue();

  /**
   * Models are made by `createModel` and `loadModel` (the class is exported as a type only); the
   * constructor still checks what it is given, since `model.constructor` reaches it.
   */
  constructor(model: Model, seed = 0) {
    if (!(model instanceof Model)) throw typeError('MixtModel', 'model', 'an engine Model (make models with createModel or loadModel)', model);
    if (!Number.isSafeInteger(seed) || seed < 0) throw typeError('MixtModel', 'seed', 'a non-negative integer', seed);
    this.#model = model;
    this.#seed = seed;
    this.#dtype = model.masterDtype;
  }

  /** The engine's model (layers, parameters); throws once disposed. */
  get engine(): Model {
    if (!this.#model) throw new MixtError('MixtModel: the model was disposed', 'ERR_DISPOSED');
    return this.#model;
  }
  get config(): ModelConfig {
    return this.engine.cfg;
  }
  get device(): Device {
    return this.engine.device;
  }
  get disposed(): boolean {
    return this.#model === null;
  }

  /** Parameter counts from the config, and `stored`: the elements actually held. */
  parameterCount(): ParameterCounts & { stored: number } {
    const c = parameterCount(this.config);
    return { ...c, stored: this.engine.parameters().reduce((a, p) => a + p.value.numel, 0) };
  }

  /**
   * Writes a checkpoint into `dir` (`dir/step-N/`, `dir/latest` points at it) that `loadModel` reads
   * and `train(..., { resume })` continues. Resolves to the checkpoint directory.
   */
  save(dir: string): Promise<string> {
    if (typeof dir !== 'string' || !dir) throw typeError('MixtModel.save', 'dir', 'a directory path', dir);
    return this.queue.run(async () => {
      const model = this.engine;
      if (this.training) return saveCheckpoint(dir, model, this.training.optimizer, this.training.state());
      const opt = new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clipNorm: 0 });
      try {
        return await saveCheckpoint(dir, model, opt, {
          step: 0, tokens: 0, optimizerStep: 0, loader: { epoch: 0, cursor: 0 }, options: {},
        });
      } finally {
        opt.dispose();
      }
    });
  }

  /** Moves the weights to another device (in place); optimiser state is dropped. */
  to(device: DeviceSpec | string): Promise<this> {
    const target = resolveDevice(device, 'MixtModel.to');
    return this.queue.run(async () => {
      const old = this.engine;
      if (old.device === target || String(old.device) === String(target)) return this;
      const names = old.cfg.modalities.map((m) => m.name);
      const stored = await exportParameters(old.parameters(), names);
      const moved = new Model(old.cfg, { device: target, seed: this.#seed, masterDtype: this.#dtype });
      importParameters(moved.parameters(), stored, names, 'MixtModel.to', target);
      this.dropTraining();
      old.dispose();
      this.#model = moved;
      return this;
    });
  }

  /** Streams generated tokens after `prompt` (see `generate`). */
  generate(prompt: ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<number, void, undefined> {
    return generate(this, prompt, options);
  }

  /** Per-modality next-token log-probabilities of a batch of sequences (see `score`). */
  score(batch: ArrayLike<number>[], options: { logits?: boolean } = {}): Promise<ScoreReport> {
    return score(this, batch, options);
  }

  /** Transfusion: a picture sampled after a caption (see `generateImage`). */
  generateImage(prompt: ArrayLike<number>, options: ImageOptions = {}): Promise<{ latents: Float32Array; rgb: Uint8Array }> {
    return generateImage(this, prompt, options);
  }

  private dropTraining(): void {
    this.training?.optimizer.dispose();
    this.training = null;
  }

  /** Frees every tensor the model owns (weights, optimiser moments, saved activations). */
  dispose(): void {
    if (!this.#model) return;
    this.dropTraining();
    this.#model.dispose();
    this.#model = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function isPreset(x: unknown): x is PresetName {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(PRESETS, x);
}

/** A new model from a preset name ('tiny' | 'small' | 'medium') or a full config. */
export function createModel(configOrPreset: ModelConfig | PresetName, options: CreateModelOptions = {}): MixtModel {
  const fn = 'createModel';
  if (typeof options !== 'object' || options === null) throw typeError(fn, 'options', 'an object', options);
  let cfg: ModelConfig;
  if (isPreset(configOrPreset)) {
    cfg = presetConfig(configOrPreset, options.vocab ?? SHAPES_VOCAB, options.blocks ?? 'mot', options.overrides ?? {});
  } else if (typeof configOrPreset === 'object' && configOrPreset !== null) {
    cfg = validateConfig(JSON.parse(JSON.stringify(configOrPreset)) as ModelConfig);
  } else {
    throw typeError(fn, 'configOrPreset', `a ModelConfig or one of ${Object.keys(PRESETS).join(', ')}`, configOrPreset);
  }
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw typeError(fn, 'options.seed', 'a non-negative integer', seed);
  const device = resolveDevice(options.device, fn);
  return new MixtModel(new Model(cfg, { device, seed, masterDtype: options.dtype }), seed);
}

/** Loads a checkpoint directory (or a run directory holding `latest`) onto a device. */
export async function loadModel(checkpointDir: string, options: { device?: DeviceSpec | string } = {}): Promise<MixtModel> {
  if (typeof checkpointDir !== 'string' || !checkpointDir) throw typeError('loadModel', 'checkpointDir', 'a directory path', checkpointDir);
  const device = resolveDevice(options.device, 'loadModel');
  const ck = await loadCheckpointAsync(checkpointDir);
  const model = new Model(validateConfig(ck.config), { device, seed: 0 });
  try {
    await restoreCheckpoint(ck, model);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return new MixtModel(model, 0);
}
