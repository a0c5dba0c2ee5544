// `train(model, data, options)`: a training run as an async iterator of step reports, then a
// summary. It starts at once and runs in the background (ops enqueue native work; only reads
// wait, off the main thread), one step at a time on the model's queue so generation and scoring
// requests interleave between steps, never inside one. An AbortSignal stops it at the next step
// boundary and saves a checkpoint (when `out` is given).
import { EventEmitter } from 'events';
import { typeError } from '../core/errors';
import { loadCheckpoint } from '../train/checkpoint';
import { TokenDataset } from '../train/data/dataset';
import { DataParallel } from '../train/distributed';
import { StepReport, TRAIN_DEFAULTS, TrainOptions, Trainer } from '../train/trainer';
import { MixtModel } from './model';

export type { StepReport, ModalityReport, RoutingReport } from '../train/trainer';
// data parallelism under mpirun (the `parallel` option): at this subpath, not the root, so nothing joins a job by accident
export { initDataParallel } from '../train/distributed';
export type { DataParallel, DataParallelOptions } from '../train/distributed';
export type { Communicator } from '../core/comm';

export interface TrainRunOptions extends Partial<TrainOptions> {
  /** Optimisation steps in all (a resumed run counts the steps already done). */
  steps: number;
  /** Stops the run at the next step boundary; a checkpoint is saved when `out` is given. */
  signal?: AbortSignal;
  /** Checkpoint directory: saved at the end (and every `checkpointEvery` steps, and on abort). */
  out?: string;
  checkpointEvery?: number;
  /** Continue from a checkpoint (or a run directory holding `latest`): weights, moments, step, data position. */
  resume?: string;
  /** Called after each checkpoint is written (also emitted as the 'checkpoint' event). */
  onCheckpoint?: (e: CheckpointEvent) => void;
  /** GPU name for MFU (default: from the model's device). */
  deviceName?: string;
  /** Data parallel over the processes of the job (from initDataParallel): `batch` is the global batch; rank 0 saves. */
  parallel?: DataParallel;
}

export interface CheckpointEvent {
  step: number;
  dir: string;
  reason: 'interval' | 'final' | 'abort';
}

export interface TrainSummary {
  steps: number; // the step count reached
  tokens: number; // tokens trained on, in all
  first: StepReport | null; // the first step of this run
  last: StepReport | null;
  aborted: boolean;
  checkpoint: string | null; // the last checkpoint written
  tokensPerSecond: number; // over this run's steps
  history: StepReport[]; // every step, resumed runs included
}

/** Options as the CLI resolves them: defaults, then a resumed run's saved options, then the given ones. */
export function resolveTrainOptions(given: Partial<TrainOptions> & { steps: number }, saved: Partial<TrainOptions> = {}): TrainOptions {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<TrainOptions>;
  const o: TrainOptions = { ...TRAIN_DEFAULTS, batch: 4, seqLen: 256, ...saved, ...defined, steps: given.steps };
  if (given.minLr === undefined && given.lr !== undefined) o.minLr = o.lr / 10;
  return o;
}

function checkOptions(o: TrainOptions, seqMax: number): void {
  const fn = 'train';
  const int = (k: 'steps' | 'batch' | 'seqLen' | 'accum', min: number) => {
    if (!Number.isSafeInteger(o[k]) || o[k] < min) throw typeError(fn, `options.${k}`, `an integer >= ${min}`, o[k]);
  };
  int('steps', 1);
  int('batch', 1);
  int('seqLen', 2);
  int('accum', 1);
  if (o.seqLen > seqMax) throw new RangeError(`${fn}: argument "options.seqLen" expected at most the model's maxSeqLen (${seqMax}), received ${o.seqLen}`);
  if (!(o.lr > 0)) throw typeError(fn, 'options.lr', 'a positive number', o.lr);
  if (o.onNonFinite !== 'skip' && o.onNonFinite !== 'stop') throw typeError(fn, 'options.onNonFinite', "'skip' or 'stop'", o.onNonFinite);
}

export class TrainRun extends EventEmitter implements AsyncIterable<StepReport> {
  /** Resolves when the run ends (done, aborted) with its summary; rejects with the run's error. */
  readonly summary: Promise<TrainSummary>;
  #reports: StepReport[] = [];
  #ended = false;
  #error: unknown = null;
  #wake: (() => void) | null = null;

  constructor(run: (emit: (r: StepReport) => void) => Promise<TrainSummary>) {
    super();
    this.summary = run((r) => this.#push(r)).then(
      (s) => {
        this.#finish(null);
        return s;
      },
      (e) => {
        this.#finish(e);
        throw e;
      },
    );
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

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

/** Trains `model` on `data`; iterate the result for step reports, await `.summary` for the end. */
export function train(model: MixtModel, data: TokenDataset, options: TrainRunOptions): TrainRun {
  if (!(model instanceof MixtModel)) throw typeError('train', 'model', 'a model from createModel or loadModel', model);
  if (typeof data !== 'object' || data === null || !(data.tokens instanceof Int32Array)) throw typeError('train', 'data', 'a TokenDataset (mixt/data)', data);
  if (typeof options !== 'object' || options === null) throw typeError('train', 'options', 'an object with steps', options);
  const engine = model.engine;
  if (data.vocab.size !== engine.cfg.vocabSize) throw new RangeError(`train: argument "data" has a vocabulary of ${data.vocab.size}, the model's is ${engine.cfg.vocabSize}`);
  const { signal, out, checkpointEvery, resume, onCheckpoint, deviceName, parallel, ...given } = options;
  const run = new TrainRun(async (emit) => {
    const ck = resume ? await loadCheckpoint(resume) : null;
    const opts = resolveTrainOptions(given, (ck?.train.options ?? {}) as Partial<TrainOptions>);
    checkOptions(opts, engine.cfg.maxSeqLen);
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
    const ms = mine.reduce((a, r) => a + r.ms, 0);
    return {
      steps: trainer.step, tokens: trainer.tokens, first: mine[0] ?? null, last: mine[mine.length - 1] ?? null, aborted, checkpoint,
      tokensPerSecond: ms ? (mine.reduce((a, r) => a + r.tokens, 0) / ms) * 1000 : 0, history: trainer.history,
    };
  });
  return run;
}
