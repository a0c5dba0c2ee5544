// The training loop: packed batches from the loader, forward with per-modality losses, backward,
// global-norm clipping, AdamW, warmup + cosine schedule, gradient accumulation, non-finite
// detection (skip the step or stop, by option), checkpoints.
import { Device } from '../core/device';
import { MixtError } from '../core/errors';
import { Generator } from '../core/random';
import { Tensor } from '../core/tensor';
import { ModelConfig, flopsPerToken } from '../model/config';
import { Model, StepInputs } from '../model/model';
import { Batch } from '../nn/batch';
import { ModStats } from '../nn/mod';
import { MoeStats } from '../nn/moe';
import { sumSquares } from '../ops';
import { LoadedCheckpoint, TrainState, restoreCheckpoint, saveCheckpoint } from './checkpoint';
import { TokenDataset } from './data/dataset';
import { HostBatch, PackedLoader, shardBatch } from './data/loader';
import { DataParallel, GradientReducer, broadcastFromRankZero } from './distributed';
import { ADAMW_DEFAULTS, AdamW } from './optimizer';
import { learningRate } from './schedule';
import { nextTurn } from '../core/runtime';

export interface TrainOptions {
  steps: number;
  batch: number; // rows per micro-batch
  seqLen: number;
  accum: number; // micro-batches per step
  lr: number;
  minLr: number;
  warmup: number;
  weightDecay: number;
  clipNorm: number;
  beta1: number;
  beta2: number;
  seed: number;
  modalityWeights?: number[]; // per-modality loss weight (default 1 each)
  onNonFinite: 'skip' | 'stop';
}

export const TRAIN_DEFAULTS: Omit<TrainOptions, 'steps' | 'batch' | 'seqLen'> = {
  accum: 1, lr: 3e-3, minLr: 3e-4, warmup: 20, weightDecay: ADAMW_DEFAULTS.weightDecay, clipNorm: 1.0,
  beta1: 0.9, beta2: 0.95, seed: 1, onNonFinite: 'skip',
};

export interface ModalityReport {
  name: string;
  loss: number; // mean cross-entropy (nats) over this modality's targets
  accuracy: number;
  targets: number;
}

export interface RoutingReport {
  layer: number;
  kind: 'mod' | 'moe';
  // mod: tokens through the block / all, BCE of the causal decision, how often it agrees with top-k
  capacityUsed?: number;
  auxLoss?: number;
  predictorAccuracy?: number;
  meanGate?: number; // mod: mean gate of the chosen tokens (the factor on their update)
  chosenShare?: number[]; // mod: fraction of each modality's tokens that went through the block (NaN: none in the batch)
  // moe: assignments per expert, max load over mean load, balancing and z losses
  load?: number[];
  maxOverMeanLoad?: number;
  lbLoss?: number;
  zLoss?: number;
}

export interface StepReport {
  step: number; // 1-based, after this step
  lr: number;
  loss: number; // the weighted mean the gradient follows
  modalities: ModalityReport[];
  gradNorm: number;
  tokens: number; // tokens processed this step
  ms: number;
  cpuMs: number; // CPU time of the process over the step, every thread (steadier than ms on a shared machine; counts any other work of the process)
  tokensPerSecond: number;
  mfu?: number; // model FLOPs utilisation (CUDA)
  skipped?: string; // why the update was skipped
  diffusionLoss?: number; // Transfusion: MSE of the noise prediction (the gradient follows lambda times it)
  routing?: RoutingReport[]; // routed layers (last micro-batch)
}


function releaseRouted(r: { mod: ModStats | null; moe: MoeStats | null }): void {
  r.mod?.auxLoss.dispose();
  r.mod?.agreement.dispose();
  r.mod?.gateMean.dispose();
  r.mod?.chosenByModality.dispose();
  for (const t of r.moe ? [r.moe.load, r.moe.lbLoss, r.moe.zLoss] : []) t.dispose();
}

const shareOf = (chosen: number[], tokens: number[] | null) => chosen.map((c, m) => (tokens && tokens[m] ? c / tokens[m] : NaN));

async function readRouting(routed: { layer: number; mod: ModStats | null; moe: MoeStats | null }[]): Promise<RoutingReport[]> {
  const out: RoutingReport[] = [];
  for (const r of routed) {
    if (r.mod) {
      out.push({
        layer: r.layer, kind: 'mod',
        capacityUsed: r.mod.chosen / r.mod.tokens,
        auxLoss: await r.mod.auxLoss.item(),
        predictorAccuracy: (await r.mod.agreement.item()) / r.mod.tokens,
        meanGate: await r.mod.gateMean.item(),
        chosenShare: shareOf(Array.from(await r.mod.chosenByModality.toArray()), r.mod.tokensByModality),
      });
    }
    if (r.moe) {
      const load = Array.from(await r.moe.load.toArray());
      const mean = load.reduce((a, b) => a + b, 0) / Math.max(1, load.length);
      out.push({
        layer: r.layer, kind: 'moe', load, maxOverMeanLoad: mean ? Math.max(...load) / mean : 0,
        lbLoss: await r.moe.lbLoss.item(), zLoss: await r.moe.zLoss.item(),
      });
    }
    releaseRouted(r);
  }
  return out;
}

// Dense bf16 tensor-core peak of known GPUs, for MFU.
export function peakFlops(deviceName: string): number | undefined {
  const n = deviceName.toLowerCase();
  if (n.includes('h100') || n.includes('h200') || n.includes('gh200')) return n.includes('pcie') ? 756e12 : 989e12;
  if (n.includes('a100')) return 312e12;
  return undefined;
}

// A host batch on the device: modality groups, documents, positions and (Transfusion) image spans.
export function deviceBatch(hb: HostBatch, modalities: number, device: Device): Batch {
  return new Batch({ modality: hb.modality, docIds: hb.docIds, positions: hb.positions, rowLength: hb.seqLen, ...(hb.spanIds ? { spanIds: hb.spanIds } : {}) }, modalities, device);
}

// The model's inputs for a host batch; `diffusion` weighs and noises its pictures (Transfusion).
export function stepInputs(hb: HostBatch, batch: Batch, lossWeights: Float32Array, diffusion: { weight: number; noise: Generator }): StepInputs {
  return {
    batch, tokens: hb.tokens, targets: hb.targets, targetModality: hb.targetModality, lossWeights,
    ...(hb.images ? { images: { ...hb.images, ...diffusion } } : {}),
  };
}

export class Trainer {
  readonly optimizer: AdamW;
  readonly loader: PackedLoader;
  readonly opts: TrainOptions;
  step = 0;
  tokens = 0;
  startStep = 0; // the step this session started from (a restored checkpoint's)
  readonly history: StepReport[] = [];
  readonly noise: Generator; // draws the diffusion noise (Transfusion), checkpointed
  #peak: number | undefined;
  // data parallelism: this process's rows of each global batch (opts.batch), gradients summed over the ranks
  readonly parallel: DataParallel | null;
  #reducer: GradientReducer | null = null;
  #replicasInSync = false;

  constructor(readonly model: Model, data: TokenDataset, opts: TrainOptions, deviceName = '', parallel?: DataParallel) {
    this.opts = opts;
    this.parallel = parallel ?? null;
    const world = this.worldSize;
    if (opts.batch % world !== 0) {
      throw new RangeError(`Trainer: the batch (${opts.batch} rows, the global batch of all ranks) must be a multiple of the world size (${world})`);
    }
    this.loader = new PackedLoader(data, opts.seqLen, opts.batch, opts.seed, 0, model.cfg.transfusion);
    this.optimizer = new AdamW(model.parameters(), {
      beta1: opts.beta1, beta2: opts.beta2, eps: 1e-8, weightDecay: opts.weightDecay, clipNorm: opts.clipNorm,
    });
    this.#peak = model.device.isCuda ? peakFlops(deviceName) : undefined;
    this.noise = new Generator(this.#noiseSeed(opts.seed * 2 + 1));
  }

  get config(): ModelConfig {
    return this.model.cfg;
  }
  // Each rank noises its own pictures: one stream per rank (rank 0's is the single-process one), else
  // the pictures of every rank would get the same noise.
  #noiseSeed(base: number): number {
    return base + this.rank * 1_000_003;
  }

  get rank(): number {
    return this.parallel?.comm.rank ?? 0;
  }
  get worldSize(): number {
    return this.parallel?.comm.size ?? 1;
  }

  // Per-token dLoss: modality weight / (weighted target count of the whole step). The count spans all
  // the step's micro-batches, so --accum N at batch B weighs every token as one step at batch N·B does.
  private lossWeights(hb: HostBatch, stepBatches: readonly HostBatch[]): Float32Array {
    const M = this.model.modalities;
    const w = this.opts.modalityWeights ?? new Array(M).fill(1);
    let norm = 0;
    for (const b of stepBatches) for (let m = 0; m < M; m++) norm += w[m] * b.targetCounts[m];
    const out = new Float32Array(hb.targets.length);
    if (norm === 0) return out;
    for (let i = 0; i < out.length; i++) if (hb.targets[i] >= 0) out[i] = w[hb.targetModality[i]] / norm;
    return out;
  }

  // One optimisation step (accum micro-batches). Resolves after the update is queued and the
  // step's statistics are read.
  async trainStep(): Promise<StepReport> {
    const t0 = performance.now(), c0 = process.cpuUsage();
    const { model, opts } = this;
    const M = model.modalities;
    const stats: { lossSums: Tensor; counts: Tensor; correct: Tensor; diffusion?: Tensor; dispose(): void }[] = [];
    let routed: { layer: number; mod: ModStats | null; moe: MoeStats | null }[] = [];
    let tokens = 0;
    const world = this.worldSize;
    this.#syncReplicas();
    // the routers' auxiliary gradients are averaged over the micro-batches (of all ranks) like the main loss
    for (const l of model.routedLayers()) {
      if (l.mod) l.mod.auxGradScale = 1 / (opts.accum * world);
      if (l.moe) l.moe.auxGradScale = 1 / (opts.accum * world);
    }
    const hostBatches = Array.from({ length: opts.accum }, () => this.loader.next());
    for (let i = 0; i < hostBatches.length; i++) {
      const hb = shardBatch(hostBatches[i], this.rank, world);
      // the event loop gets a turn between the enqueueing of each forward and backward (each is a
      // few thousand ops of synchronous JavaScript in a deep model), so other work is not held up
      await nextTurn();
      const batch = deviceBatch(hb, M, model.device);
      stats.push(model.forward(stepInputs(hb, batch, this.lossWeights(hb, hostBatches), { weight: 1 / (opts.accum * world), noise: this.noise })));
      for (const r of routed) releaseRouted(r);
      routed = model.routedLayers().map((l) => ({ layer: l.layer, mod: l.mod?.takeStats() ?? null, moe: l.moe?.takeStats() ?? null }));
      await nextTurn();
      // the last micro-batch's backward completes the gradients: their all-reduce may start layer by layer
      const reducer = i === opts.accum - 1 ? this.#reducer : null;
      model.backward(reducer && this.parallel?.overlap ? (ps) => reducer.ready(ps) : undefined);
      batch.dispose();
      tokens += hb.tokens.length;
    }
    this.#reducer?.finish();
    await nextTurn();
    const gsq = this.optimizer.gradNormSquared();
    const gsqValue = await gsq.item();
    const lr = learningRate({ lr: opts.lr, minLr: opts.minLr, warmupSteps: opts.warmup, totalSteps: opts.steps }, this.step);
    let skipped: string | undefined;
    if (!Number.isFinite(gsqValue)) {
      const culprit = await this.nonFiniteGradient();
      skipped = `non-finite gradient in ${culprit} at step ${this.step + 1}`;
      if (opts.onNonFinite === 'stop') {
        gsq.dispose();
        for (const s of stats) s.dispose();
        model.zeroGrad();
        throw new MixtError(`training stopped: ${skipped}`, 'ERR_NON_FINITE');
      }
    } else {
      await this.optimizer.apply(lr, gsq);
    }
    gsq.dispose();
    model.zeroGrad();
    // statistics of the step
    const sums = new Float64Array(M), counts = new Float64Array(M), correct = new Float64Array(M);
    let diffusion = 0, diffusionParts = 0;
    for (const s of stats) {
      if (s.diffusion) {
        diffusion += await s.diffusion.item();
        diffusionParts++;
      }
      const [l, c, k] = await Promise.all([s.lossSums.toArray(), s.counts.toArray(), s.correct.toArray()]);
      for (let m = 0; m < M; m++) {
        sums[m] += l[m];
        counts[m] += c[m];
        correct[m] += k[m];
      }
      s.dispose();
    }
    if (this.parallel) {
      const all = await this.parallel.comm.hostAllReduceSum(Float64Array.from([...sums, ...counts, ...correct, diffusion, diffusionParts, tokens]));
      sums.set(all.subarray(0, M));
      counts.set(all.subarray(M, 2 * M));
      correct.set(all.subarray(2 * M, 3 * M));
      [diffusion, diffusionParts, tokens] = [all[3 * M], all[3 * M + 1], all[3 * M + 2]];
    }
    const w = opts.modalityWeights ?? new Array(M).fill(1);
    let num = 0, den = 0;
    for (let m = 0; m < M; m++) {
      num += w[m] * sums[m];
      den += w[m] * counts[m];
    }
    const routing = await readRouting(routed);
    this.step++;
    this.tokens += tokens;
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    const report: StepReport = {
      step: this.step,
      lr,
      loss: den ? num / den : NaN,
      modalities: model.cfg.modalities.map((mod, m) => ({
        name: mod.name,
        loss: counts[m] ? sums[m] / counts[m] : NaN,
        accuracy: counts[m] ? correct[m] / counts[m] : NaN,
        targets: counts[m],
      })),
      gradNorm: Math.sqrt(gsqValue),
      tokens,
      ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      tokensPerSecond: (tokens / ms) * 1000,
      ...(this.#peak ? { mfu: (flopsPerToken(model.cfg, opts.seqLen) * tokens) / (ms / 1000) / this.#peak } : {}),
      ...(skipped ? { skipped } : {}),
      ...(routing.length ? { routing } : {}),
      ...(diffusionParts ? { diffusionLoss: diffusion / diffusionParts } : {}),
    };
    if (!Number.isFinite(report.loss) && !skipped && opts.onNonFinite === 'stop') {
      throw new MixtError(`training stopped: non-finite loss at step ${this.step}`, 'ERR_NON_FINITE');
    }
    this.history.push(report);
    return report;
  }

  // Replicas start from rank 0's weights and moments (once, before the first step of a session).
  #syncReplicas(): void {
    if (!this.parallel || this.#replicasInSync) return;
    this.#replicasInSync = true;
    this.#reducer = new GradientReducer(this.parallel, this.model.parameters());
    broadcastFromRankZero(this.parallel, this.model.parameters(), [...this.optimizer.m.values(), ...this.optimizer.v.values()]);
  }

  // Names the first parameter whose gradient holds NaN or infinity.
  private async nonFiniteGradient(): Promise<string> {
    for (const p of this.model.parameters()) {
      if (!p.grad) continue;
      const s = sumSquares(p.grad);
      const v = await s.item();
      s.dispose();
      if (!Number.isFinite(v)) return p.name;
    }
    return 'an unknown parameter';
  }

  state(): TrainState {
    return {
      step: this.step,
      tokens: this.tokens,
      optimizerStep: this.optimizer.step,
      loader: this.loader.state,
      options: { ...this.opts },
      history: this.history,
      rng: this.noise.state(),
    };
  }

  // Rank 0 writes (the replicas are equal); the others write nothing and resolve to ''.
  async save(outDir: string): Promise<string> {
    if (this.rank !== 0) return '';
    return saveCheckpoint(outDir, this.model, this.optimizer, this.state());
  }

  // Continues from a checkpoint: weights, moments, step, data position.
  restore(ck: LoadedCheckpoint): void {
    restoreCheckpoint(ck, this.model, this.optimizer);
    this.step = ck.train.step;
    this.startStep = ck.train.step;
    this.tokens = ck.train.tokens;
    this.loader.setState(ck.train.loader);
    // rank 0 saved its stream; every rank continues at that position of its own one
    if (ck.train.rng) this.noise.setState({ ...ck.train.rng, seed: this.#noiseSeed(ck.train.rng.seed) });
    if (Array.isArray(ck.train.history)) this.history.push(...(ck.train.history as StepReport[]));
  }

  // Throughput of the steps run since construction or restore (a resumed run's history also holds
  // the steps of earlier sessions, whose time says nothing about this one).
  throughput(): { steps: number; tokens: number; seconds: number; tokensPerSecond: number } {
    const mine = this.history.filter((r) => r.step > this.startStep);
    const tokens = mine.reduce((a, r) => a + r.tokens, 0), seconds = mine.reduce((a, r) => a + r.ms, 0) / 1000;
    return { steps: mine.length, tokens, seconds, tokensPerSecond: seconds > 0 ? tokens / seconds : NaN };
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
