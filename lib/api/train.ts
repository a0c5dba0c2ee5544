// `train(model, data, options)`: a training run as an async iterator of step reports, then a
// summary; the one training loop of the package (`mixt train` and `mixt compare` are front ends of
// it). It starts at once and runs in the background (ops enqueue native work; only reads wait, off
// the main thread), one step at a time on the model's queue so generation and scoring requests
// interleave between steps, never inside one. Before the first step it resolves the options (a
// resumed run keeps its checkpoint's unless overridden, and lists the overrides) and checks that a
// step fits in memory. An AbortSignal stops it at the next step boundary and saves a checkpoint
// (when `out` is given). The step itself is the engine's (lib/train Trainer.trainStep).
import { EventEmitter } from 'events';
import { typeError } from '../core/errors';
import { loadCheckpointAsync } from '../train/checkpoint';
import { TokenDataset } from '../train/data/dataset';
import { DataParallel } from '../train/distributed';
import { StepEstimate, assertStepFits, estimateStep, estimateWarnings } from '../train/estimate';
import { ResumedOptions, resumedOptions } from '../train/resume';
import { StepReport, TRAIN_DEFAULTS, TrainOptions, Trainer } from '../train/trainer';
import { MixtModel } from './model';
import { nextTurn } from '../core/runtime';

export type { StepReport, ModalityReport, RoutingReport, TrainOptions } from '../train/trainer';
export type { StepEstimate } from '../train/estimate';
// data parallelism under mpirun (the `parallel` option): at this subpath, not the root, so nothing joins a job by accident
export { initDataParallel } from '../train/distributed';
export type { DataParallel, DataParallelOptions } from '../train/distributed';
export type { Communicator } from '../core/comm';

export interface TrainRunOptions extends Partial<TrainOptions> {
  /** Optimisation steps in all (a resumed run counts the steps already done). Required unless `resume` is given (then: the checkpoint's). */
  steps?: number;
  /** Stops the run at the next step boundary; a checkpoint is saved when `out` is given. */
  signal?: AbortSignal;
  /** Checkpoint directory: saved at the end (and every `checkpointEvery` steps, and on abort). */
  out?: string;
  checkpointEvery?: number;
  /**
   * Continue from a checkpoint (or a run directory holding `latest`): weights, moments, step, data
   * position, and every option that shapes the run (seed, batch, schedule, ...) unless given here;
   * the options given that differ from the checkpoint's are listed in the plan's `overridden`.
   */
  resume?: string;
  /** Called after each checkpoint is written (also emitted as the 'checkpoint' event). */
  onCheckpoint?: (e: CheckpointEvent) => void;
  /** GPU name for MFU (default: from the model's device). */
  deviceName?: string;
  /** Data parallel over the processes of the job (from initDataParallel): `batch` is the global batch; rank 0 saves. */
  parallel?: DataParallel;
  /**
   * Before the first step the memory of a step is estimated and a step that cannot fit is refused
   * (ERR_OOM, with the numbers). `calibrate: true` also times a short GEMM on the device to predict
   * the step and run time (the plan's `estimate.msPerStep`, and `warnings` for a long run).
   */
  estimate?: { calibrate?: boolean };
  /** How messages name the options (a front end passes its flags, e.g. `{ steps: '--steps' }`). */
  optionNames?: Partial<Record<keyof TrainOptions, string>>;
}

export interface CheckpointEvent {
  step: number;
  dir: string;
  reason: 'interval' | 'final' | 'abort';
}

/** What a run will do, known before its first step (`await run.plan`, or the 'plan' event). */
export interface TrainPlan {
  options: TrainOptions; // the resolved options
  startStep: number; // 0, or the resumed checkpoint's step
  resumedFrom: string | null; // the checkpoint directory resumed
  overridden: ResumedOptions['overridden']; // options given that replace the resumed checkpoint's
  estimate: StepEstimate;
  warnings: string[]; // a slow step, a long run, memory nearly full
}

export interface TrainSummary {
  steps: number; // the step count reached
  tokens: number; // tokens trained on, in all
  startStep: number; // the step this run started from (a resumed checkpoint's)
  first: StepReport | null; // the first step of this run
  last: StepReport | null;
  aborted: boolean;
  checkpoint: string | null; // the last checkpoint written
  tokensPerSecond: number; // over this run's steps
  run: { steps: number; tokens: number; seconds: number; tokensPerSecond: number }; // this run's steps only
  history: StepReport[]; // every step, resumed runs included
}

/** Options of a new run: the defaults (batch 4, seqLen min(256, maxSeqLen), minLr lr/10), then the given ones. */
export function resolveTrainOptions(given: Partial<TrainOptions> & { steps: number }, seqMax = Infinity): TrainOptions {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<TrainOptions>;
  const o: TrainOptions = { ...TRAIN_DEFAULTS, batch: 4, seqLen: Math.min(256, seqMax), ...defined, steps: given.steps };
  if (given.minLr === undefined && given.lr !== undefined) o.minLr = o.lr / 10;
  return o;
}

const TRAIN_OPTION_KEYS: readonly (keyof TrainOptions)[] = [
  'steps', 'batch', 'seqLen', 'accum', 'lr', 'minLr', 'warmup', 'weightDecay', 'clipNorm', 'beta1', 'beta2', 'seed', 'modalityWeights', 'onNonFinite',
];

function checkOptions(o: TrainOptions, seqMax: number, name: (k: keyof TrainOptions) => string): void {
  const fn = 'train';
  const int = (k: 'steps' | 'batch' | 'seqLen' | 'accum' | 'seed', min: number) => {
    if (!Number.isSafeInteger(o[k]) || o[k] < min) throw typeError(fn, name(k), `an integer >= ${min}`, o[k]);
  };
  int('steps', 1);
  int('batch', 1);
  int('seqLen', 2);
  int('accum', 1);
  int('seed', 0);
  if (o.seqLen > seqMax) throw new RangeError(`${fn}: argument "${name('seqLen')}" expected at most the model's maxSeqLen (${seqMax}), received ${o.seqLen}`);
  if (!(o.lr > 0)) throw typeError(fn, name('lr'), 'a positive number', o.lr);
  if (!(o.minLr >= 0)) throw typeError(fn, name('minLr'), 'a number >= 0', o.minLr);
  if (!(Number.isSafeInteger(o.warmup) && o.warmup >= 0)) throw typeError(fn, name('warmup'), 'an integer >= 0', o.warmup);
  if (o.onNonFinite !== 'skip' && o.onNonFinite !== 'stop') throw typeError(fn, name('onNonFinite'), "'skip' or 'stop'", o.onNonFinite);
}

export class TrainRun extends EventEmitter implements AsyncIterable<StepReport> {
  /** Resolves when the run ends (done, aborted) with its summary; rejects with the run's error. */
  readonly summary: Promise<TrainSummary>;
  /** Resolves before the first step with what the run will do; rejects when it cannot start. */
  readonly plan: Promise<TrainPlan>;
  #reports: StepReport[] = [];
  #ended = false;
  #error: unknown = null;
  #wake: (() => void) | null = null;

  /** Runs are made by `train()`; `run` receives the callbacks that report the plan and each step. */
  constructor(run: (emit: (r: StepReport) => void, announce: (p: TrainPlan) => void) => Promise<TrainSummary>) {
    if (typeof run !== 'function') throw typeError('TrainRun', 'run', 'a function (runs are made by train())', run);
    super();
    let announce!: (p: TrainPlan) => void;
    const planned = new Promise<TrainPlan>((resolve) => (announce = resolve));
    this.summary = run(
      (r) => this.#push(r),
      (p) => {
        announce(p);
        this.emit('plan', p);
      },
    ).then(
      (s) => {
        this.#finish(null);
        return s;
      },
      (e) => {
        this.#finish(e);
        throw e;
      },
    );
    // a run that fails before its plan rejects the plan with the same error
    this.plan = Promise.race([planned, this.summary.then(() => planned)]);
    this.plan.catch(() => undefined);
    this.summary.catch(() => undefined); // the error reaches whoever iterates or awaits summary
  }

  #push(r: StepReport): void {
    this.#reports.push(r);
    this.emit('step', r);
    this.#wake?.();
  }
  #finish(e: unknown): void {
    this.#ended = true;
    this.#error = e;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StepReport> {
    let i = 0;
    for (;;) {
      if (i < this.#reports.length) {
        yield this.#reports[i++];
        continue;
      }
      if (this.#ended) {
        if (this.#error) throw this.#error;
        return;
      }
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = null;
    }
  }
}


/** Trains `model` on `data`; iterate the result for step reports, await `.summary` for the end. */
export function train(model: MixtModel, data: TokenDataset, options: TrainRunOptions): TrainRun {
  if (!(model instanceof MixtModel)) throw typeError('train', 'model', 'a model from createModel or loadModel', model);
  if (typeof data !== 'object' || data === null || !(data.tokens instanceof Int32Array)) throw typeError('train', 'data', 'a TokenDataset (mixt/data)', data);
  if (typeof options !== 'object' || options === null) throw typeError('train', 'options', 'an object with steps', options);
  const engine = model.engine;
  if (data.vocab.size !== engine.cfg.vocabSize) throw new RangeError(`train: argument "data" has a vocabulary of ${data.vocab.size}, the model's is ${engine.cfg.vocabSize}`);
  const { signal, out, checkpointEvery, resume, onCheckpoint, deviceName, estimate, optionNames, parallel, ...rest } = options;
  const name = (k: keyof TrainOptions) => optionNames?.[k] ?? `options.${k}`;
  if (resume !== undefined && (typeof resume !== 'string' || !resume)) throw typeError('train', 'options.resume', 'a checkpoint or run directory', resume);
  if (resume === undefined && rest.steps === undefined) throw typeError('train', name('steps'), 'an integer >= 1 (or options.resume)', rest.steps);
  if (checkpointEvery !== undefined && !(Number.isSafeInteger(checkpointEvery) && checkpointEvery >= 1)) {
    throw typeError('train', 'options.checkpointEvery', 'an integer >= 1', checkpointEvery);
  }
  const given: Partial<TrainOptions> = {};
  for (const k of TRAIN_OPTION_KEYS) if (rest[k] !== undefined) (given as Record<string, unknown>)[k] = rest[k];
  const run = new TrainRun(async (emit, announce) => {
    await nextTurn(); // the run starts on a turn of its own, not inside the caller's synchronous code
    const ck = resume ? await loadCheckpointAsync(resume) : null;
    const resumed = ck ? resumedOptions(ck.train.options, ck.train.step, given, optionNames) : null;
    const opts = resumed ? resumed.options : resolveTrainOptions(given as Partial<TrainOptions> & { steps: number }, engine.cfg.maxSeqLen);
    checkOptions(opts, engine.cfg.maxSeqLen, name);
    const startStep = ck?.train.step ?? 0;
    // a rank holds its share of the global batch, refused here, before the estimate and the plan
    const world = parallel?.comm.size ?? 1;
    if (opts.batch % world !== 0) {
      throw new RangeError(`train: argument "${name('batch')}" expected a multiple of the world size (${world}), the global batch of all ranks; received ${opts.batch}`);
    }
    const shape = { batch: opts.batch / world, seqLen: opts.seqLen, accum: opts.accum, steps: opts.steps - startStep };
    const est = await estimateStep(engine.cfg, shape, engine.device, { calibrate: !!estimate?.calibrate, masterDtype: engine.masterDtype });
    assertStepFits(est, shape);
    announce({ options: opts, startStep, resumedFrom: ck?.dir ?? null, overridden: resumed?.overridden ?? [], estimate: est, warnings: estimateWarnings(est) });
    const trainer = new Trainer(engine, data, opts, deviceName ?? (engine.device.isCuda ? String(engine.device) : 'cpu'), parallel);
    model.training?.optimizer.dispose();
    model.training = { optimizer: trainer.optimizer, state: () => trainer.state() };
    if (ck) await model.queue.run(() => trainer.restore(ck));
    const mine: StepReport[] = [];
    let checkpoint: string | null = null;
    const save = async (reason: CheckpointEvent['reason']) => {
      if (!out || trainer.rank !== 0) return; // the replicas are equal: rank 0 writes
      checkpoint = await model.queue.run(() => trainer.save(out));
      const e: CheckpointEvent = { step: trainer.step, dir: checkpoint, reason };
      onCheckpoint?.(e);
      run.emit('checkpoint', e);
    };
    let aborted = false;
    while (trainer.step < opts.steps) {
      if (signal?.aborted) {
        aborted = true;
        break;
      }
      const r = await model.queue.run(() => trainer.trainStep(), 'low');
      mine.push(r);
      emit(r);
      if (checkpointEvery && r.step % checkpointEvery === 0 && r.step < opts.steps) await save('interval');
      await nextTurn(); // requests waiting on the model get their turn between steps
    }
    await save(aborted ? 'abort' : 'final');
    const through = trainer.throughput();
    return {
      steps: trainer.step, tokens: trainer.tokens, startStep, first: mine[0] ?? null, last: mine[mine.length - 1] ?? null, aborted, checkpoint,
      tokensPerSecond: through.tokensPerSecond || 0, run: through, history: trainer.history,
    };
  });
  return run;
}
