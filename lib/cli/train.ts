// `mixt train`: trains a model on the embedded multimodal corpus (or a packed token file), shows
// per-modality loss, tokens/s and (CUDA) MFU on stderr, saves checkpoints, ends with a summary. A
// front end of the library's train() (lib/api/train.ts), the one training loop.
import { Command } from 'commander';
import * as cliProgress from 'cli-progress';
import * as fs from 'fs';
import { BLOCK_KINDS, BlockKind, ModelConfig, PRESETS, PresetName, TRANSFUSION_DEFAULTS, parameterCount, presetConfig, validateConfig } from '../model/config';
import { MixtModel, createModel } from '../api/model';
import { TrainPlan, TrainSummary, train } from '../api/train';
import { CheckpointInfo, clearRun, latestStep, readCheckpointInfo, runDirectory } from '../train/checkpoint';
import { TokenDataset, shapesCorpus, unigramEntropy } from '../train/data/dataset';
import { readTokenFile } from '../train/data/tokenfile';
import { GRID } from '../train/data/shapes';
import { PATCHES, PATCH_DIM, transfusionCorpus } from '../train/data/transfusion';
import { describeEstimate } from '../train/estimate';
import { StepReport, TRAIN_DEFAULTS, TrainOptions } from '../train/trainer';
import { DataParallel, initDataParallel } from '../train/distributed';
import { localRank } from '../core/comm';
import { Device } from '../core/device';
import { deviceName, fmt, intOption, numberOption, pickDevice, predictionName, readJsonOption, table, warn } from './common';

// Defaults per preset: the tiny one finishes in under three minutes on 2 CPU cores.
export const RUN_DEFAULTS: Record<PresetName, { steps: number; batch: number; seq: number; lr: number }> = {
  tiny: { steps: 1200, batch: 4, seq: 256, lr: 5e-3 },
  small: { steps: 2000, batch: 32, seq: 1024, lr: 6e-4 },
  medium: { steps: 4000, batch: 32, seq: 2048, lr: 3e-4 },
};

export interface TrainCliOptions {
  preset: PresetName;
  objective?: 'ar' | 'transfusion';
  config?: string;
  blocks?: string;
  data?: string;
  device?: string;
  steps?: number;
  batch?: number;
  seq?: number;
  accum?: number;
  lr?: number;
  out?: string;
  resume?: string;
  json?: boolean;
  seed?: number; // default 1; a resumed run keeps its checkpoint's unless given
  force?: boolean; // replace the run already in --out
  checkpointEvery?: number;
  onNonFinite?: 'skip' | 'stop';
  quiet?: boolean;
  progress?: boolean; // the progress bar (default: unless quiet or json)
  label?: string; // names the run on its progress bar (compare: dense, mot)
  distributed?: boolean; // data parallel over the processes of mpirun (rank 0 reports and saves)
}

// Joins the job under --distributed: each rank on its own GPU (its local rank) or the CPU. Ranks
// other than 0 train quietly.
async function joinJob(o: TrainCliOptions): Promise<{ choice: ReturnType<typeof pickDevice>; dp: DataParallel }> {
  let choice = pickDevice(o.device, true);
  if (choice.device.isCuda && !/^cuda:\d+$/.test(o.device ?? '')) choice = { ...choice, device: Device.of(localRank()) };
  const dp = await initDataParallel(choice.device);
  if (dp.comm.rank !== 0) Object.assign(o, { quiet: true, json: false, progress: false });
  if (!o.quiet) process.stderr.write(`mixt: device ${choice.device} (${choice.reason}); ${dp.comm.describe()}\n`);
  return { choice, dp };
}

// The data of an objective: a token file, or the embedded corpus (its training split: 20000 documents;
// its held-out shape/colour pairs: 2000). Transfusion trains and is judged on continuous pictures.
export function loadData(path?: string, objective: 'ar' | 'transfusion' = 'ar', split: 'train' | 'eval' = 'train'): TokenDataset {
  const [docs, seed] = split === 'train' ? [20000, 1] : [2000, 2];
  if (path) {
    const ds = readTokenFile(path);
    if (objective === 'transfusion' && !ds.patches) throw new RangeError(`--data ${path}: the Transfusion objective needs continuous pictures; pack the data with --objective transfusion`);
    if (objective === 'ar' && ds.patches) throw new RangeError(`--data ${path}: holds continuous pictures; train it with --objective transfusion`);
    return ds;
  }
  return objective === 'transfusion' ? transfusionCorpus({ docs, seed, split }) : shapesCorpus({ docs, seed, split });
}

// One kind for every layer, or a comma-separated pattern repeated over the layers
// ("mot,mod": Mixture-of-Depths every other layer).
export function parseBlocks(spec: string | undefined, layers: number): BlockKind[] {
  const parts = (spec ?? 'mot').split(',').map((s) => s.trim()).filter(Boolean) as BlockKind[];
  if (!parts.length) throw new RangeError('--blocks: give at least one block kind');
  return Array.from({ length: layers }, (_, i) => parts[i % parts.length]);
}

// A new run never takes over another run's directory silently: a directory whose `latest` points at
// a checkpoint is refused unless --force (which removes that run's checkpoints) or the run resumes
// from it. A resumed run may not write where a later checkpoint than its own sits.
function claimOutDir(out: string, resumedStep: number | undefined, force: boolean, say: (line: string) => void): void {
  const held = latestStep(out);
  if (held === undefined) return;
  if (resumedStep === undefined) {
    if (!force) {
      throw new RangeError(
        `--out ${out} already holds a run (latest: step ${held}); continue it with --resume ${out}, replace it with --force, or give another --out`,
      );
    }
    clearRun(out);
    say(`--force: removed the run in ${out} (it was at step ${held})`);
  } else if (held > resumedStep) {
    if (!force) {
      throw new RangeError(
        `--out ${out} holds a later checkpoint (step ${held}) than the one resumed (step ${resumedStep}); ` +
          'give another --out for this branch, or --force to remove the later checkpoints',
      );
    }
    clearRun(out, resumedStep);
    say(`--force: removed the checkpoints of ${out} after step ${resumedStep}`);
  }
}

function freshRunOptions(o: TrainCliOptions, cfg: ModelConfig): TrainOptions {
  const d = RUN_DEFAULTS[o.preset];
  const lr = o.lr ?? d.lr;
  return {
    ...TRAIN_DEFAULTS,
    steps: o.steps ?? d.steps,
    batch: o.batch ?? d.batch,
    seqLen: o.seq ?? Math.min(d.seq, cfg.maxSeqLen),
    lr,
    minLr: lr / 10,
    seed: o.seed ?? 1,
    accum: o.accum ?? 1,
    onNonFinite: o.onNonFinite ?? 'skip',
  };
}

// How train()'s messages name the options: by their flags. A resumed run gets only the flags given,
// so that the checkpoint's options stand unless overridden (and train() lists the overrides).
const FLAG_OF: Partial<Record<keyof TrainOptions, string>> = {
  steps: '--steps', batch: '--batch', seqLen: '--seq', lr: '--lr', seed: '--seed', accum: '--accum', onNonFinite: '--on-non-finite',
};
const givenFlags = (o: TrainCliOptions): Partial<TrainOptions> => ({
  steps: o.steps, batch: o.batch, seqLen: o.seq, lr: o.lr, seed: o.seed, accum: o.accum, onNonFinite: o.onNonFinite,
});

// What the CLI says before the first step: overrides of a resumed run, the estimate of memory and
// time (and a warning when it will be slow, and always for the GPU presets on a CPU), the model.
function sayPlan(plan: TrainPlan, cfg: ModelConfig, o: TrainCliOptions, device: Device, out: string, say: (line: string) => void): void {
  for (const x of plan.overridden) say(`${FLAG_OF[x.name] ?? x.name} ${x.value} overrides the checkpoint's ${x.saved}`);
  if (!o.quiet) {
    process.stderr.write(`mixt: estimate: ${describeEstimate(plan.estimate)}\n`);
    const why = [...plan.warnings];
    if (!device.isCuda && o.preset !== 'tiny') why.unshift(`the ${o.preset} preset is meant for a GPU; on this CPU ${describeEstimate(plan.estimate)}`);
    for (const w of why) warn(w);
  }
  const opts = plan.options, names = cfg.modalities.map((m) => m.name), counts = parameterCount(cfg);
  say(
    `${plan.resumedFrom ? `resuming ${plan.resumedFrom} at step ${plan.startStep}, into ${out}: ` : `${o.preset} `}` +
      `${cfg.blocks.every((b) => b === cfg.blocks[0]) ? cfg.blocks[0] : cfg.blocks.join(',')} model, ` +
      `${(counts.total / 1e6).toFixed(2)}M parameters (${(counts.activePerToken / 1e6).toFixed(2)}M active per token), ` +
      `${names.length} modalities (${names.join(', ')}), ${opts.steps} steps of ${opts.batch}x${opts.seqLen} tokens, seed ${opts.seed}`,
  );
}

function progressBar(o: TrainCliOptions): cliProgress.SingleBar | null {
  if (o.json || !(o.progress ?? !o.quiet)) return null;
  return new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${o.label ?? 'train'} {bar} {value}/{total} | loss {loss} | {mods} | {tps} tok/s{mfu}`,
      hideCursor: true,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 5000,
    },
    cliProgress.Presets.shades_classic,
  );
}

export interface TrainResult {
  model: MixtModel; // the trained model (the caller disposes it)
  summary: TrainSummary;
  entropy: number[];
  first: StepReport;
  last: StepReport;
  checkpoint: string;
}

// The model a run trains: the resumed checkpoint's config, or the preset's with --blocks, the data's
// vocabulary and --config's fields.
function runConfig(o: TrainCliOptions, resumed: CheckpointInfo | null, data: TokenDataset, objective: 'ar' | 'transfusion'): ModelConfig {
  if (resumed) return validateConfig(resumed.config);
  const preset = o.preset;
  const vocab = { size: data.vocab.size, modalities: data.vocab.modalities.map((m) => ({ name: m.name, range: m.range })) };
  const overrides = o.config ? (readJsonOption('--config', o.config, 'a JSON object of ModelConfig fields') as Partial<ModelConfig>) : {};
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) throw new RangeError(`--config ${o.config}: expected a JSON object of ModelConfig fields`);
  return presetConfig(preset, vocab, parseBlocks(o.blocks, overrides.layers ?? PRESETS[preset].layers), {
    ...(objective === 'transfusion' ? { transfusion: { patchDim: data.patchDim ?? PATCH_DIM, ...TRANSFUSION_DEFAULTS } } : {}),
    ...(data.vocab.codec ? { codec: data.vocab.codec } : {}),
    ...(o.data ? {} : { imagePositions: { modality: 'image', size: objective === 'transfusion' ? PATCHES : GRID * GRID } }),
    ...overrides,
  });
}

// Parses nothing itself (commander did): resolves the run's directory, data and model, then hands
// the run to train() and prints its plan, its steps and its summary.
export async function runTrain(o: TrainCliOptions): Promise<TrainResult> {
  const job = o.distributed ? await joinJob(o) : null;
  const choice = job?.choice ?? pickDevice(o.device, o.quiet);
  const say = (line: string) => (o.quiet ? undefined : process.stderr.write(`mixt: ${line}\n`));
  const resumed = o.resume ? await readCheckpointInfo(o.resume) : null;
  // a resumed run continues in its own directory unless --out says otherwise
  const out = o.out ?? (o.resume ? runDirectory(o.resume) : `runs/${o.preset}`);
  const objective = o.objective ?? (resumed?.config.transfusion ? 'transfusion' : 'ar');
  if (objective !== 'ar' && objective !== 'transfusion') throw new RangeError(`--objective must be 'ar' or 'transfusion', received "${objective}"`);
  if (resumed && (objective === 'transfusion') !== !!resumed.config.transfusion) {
    throw new RangeError(`--objective ${objective} does not match the checkpoint ${resumed.dir} (a ${resumed.config.transfusion ? 'transfusion' : 'ar'} model)`);
  }
  if (!PRESETS[o.preset]) throw new RangeError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, received "${o.preset}"`);
  if ((job?.dp.comm.rank ?? 0) === 0) claimOutDir(out, resumed?.train.step, !!o.force, say);
  const data = loadData(o.data, objective);
  const cfg = runConfig(o, resumed, data, objective);
  if (cfg.vocabSize !== data.vocab.size) throw new RangeError(`the data's vocabulary (${data.vocab.size}) does not match the model's (${cfg.vocabSize})`);
  const given = resumed ? givenFlags(o) : freshRunOptions(o, cfg);
  const model = createModel(cfg, { device: choice.device, seed: given.seed ?? Number(resumed?.train.options.seed ?? 1) });
  try {
    const run = train(model, data, {
      ...given, resume: o.resume, out, checkpointEvery: o.checkpointEvery, deviceName: deviceName(choice), parallel: job?.dp, estimate: { calibrate: !o.quiet }, optionNames: FLAG_OF,
    });
    const plan = await run.plan;
    sayPlan(plan, cfg, o, choice.device, out, say);
    const bar = progressBar(o);
    bar?.start(plan.options.steps, plan.startStep, { loss: '-', mods: '', tps: '-', mfu: '' });
    try {
      for await (const r of run) {
        if (o.json) process.stdout.write(JSON.stringify({ type: 'step', ...r }) + '\n');
        bar?.update(r.step, {
          loss: fmt(r.loss),
          mods: r.modalities.map((m) => `${m.name} ${m.targets ? fmt(m.loss, 2) : '-'}`).join(' ') + (r.diffusionLoss !== undefined ? ` diffusion ${fmt(r.diffusionLoss, 3)}` : ''),
          tps: Math.round(r.tokensPerSecond),
          mfu: (r.mfu !== undefined ? ` | MFU ${(100 * r.mfu).toFixed(1)}%` : '') + routingSummary(r),
        });
      }
    } finally {
      bar?.stop();
    }
    const summary = await run.summary;
    await job?.dp.comm.finalize();
    const first = summary.first ?? summary.history[summary.history.length - 1];
    const last = summary.last ?? first;
    const result: TrainResult = { model, summary, entropy: unigramEntropy(data), first, last, checkpoint: summary.checkpoint ?? '' };
    if (o.json) process.stdout.write(JSON.stringify({ type: 'summary', checkpoint: result.checkpoint, entropy: result.entropy, first, last, run: summary.run }) + '\n');
    else if (!o.quiet) printSummary(result);
    return result;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

// A short routing line for the progress bar: MoD predictor accuracy, MoE load imbalance.
function routingSummary(r: StepReport): string {
  if (!r.routing?.length) return '';
  const mod = r.routing.filter((x) => x.kind === 'mod'), moe = r.routing.filter((x) => x.kind === 'moe');
  const parts: string[] = [];
  if (mod.length) parts.push(`MoD ${fmt(100 * mod[0].capacityUsed!, 1)}% of tokens, predictor ${fmt(100 * mean(mod.map((x) => x.predictorAccuracy!)), 0)}%`);
  if (moe.length) parts.push(`MoE max/mean load ${fmt(mean(moe.map((x) => x.maxOverMeanLoad!)), 2)}`);
  return ` | ${parts.join(', ')}`;
}
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);

function printSummary(r: TrainResult): void {
  const t = table(['modality', 'unigram entropy', 'first loss', 'final loss', 'final accuracy', 'targets/step']);
  // A modality with no next-token targets (pictures under --objective transfusion) shows '-', not NaN.
  const loss = (m: { loss: number; targets: number }) => (m.targets ? fmt(m.loss) : '-');
  r.last.modalities.forEach((m, i) => {
    const continuous = !m.targets && r.last.diffusionLoss !== undefined;
    t.push([m.name, continuous ? '-' : fmt(r.entropy[i]), loss(r.first.modalities[i]), loss(m), m.targets ? `${(100 * m.accuracy).toFixed(1)}%` : '-', continuous ? '0 (diffusion)' : String(m.targets)]);
  });
  const run = r.summary.run;
  console.log(t.toString());
  if (r.last.diffusionLoss !== undefined) console.log(`diffusion (MSE of the ${predictionName(r.model.config)} prediction): first ${fmt(r.first.diffusionLoss!)}, final ${fmt(r.last.diffusionLoss)}`);
  const resumed = r.summary.startStep ? ` (${run.steps} in this run, resumed at step ${r.summary.startStep})` : '';
  console.log(`${r.last.step} steps${resumed}, ${r.summary.tokens} tokens, ${Math.round(run.tokensPerSecond)} tokens/s${resumed ? ' in this run' : ''}${r.last.mfu !== undefined ? `, MFU ${(100 * r.last.mfu).toFixed(1)}%` : ''}`);
  console.log(`checkpoint: ${r.checkpoint}`);
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a model (default: the tiny preset on the embedded multimodal shapes corpus)')
    .option('--preset <name>', 'tiny | small | medium', 'tiny')
    .option('--objective <kind>', "'ar' (next token everywhere; the default) or 'transfusion' (continuous pictures with a diffusion loss)")
    .option('--config <file>', 'model config JSON (fields override the preset)')
    .option('--blocks <kinds>', `block kind of every layer, or a comma-separated pattern repeated over the layers (${BLOCK_KINDS.join(', ')})`)
    .option('--data <file>', 'a packed token file (.mixt); default: the embedded corpus')
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N' (default: auto, or MIXT_DEVICE)")
    .option('--steps <n>', 'optimisation steps', intOption('--steps'))
    .option('--batch <n>', 'sequences per micro-batch', intOption('--batch'))
    .option('--seq <n>', 'sequence length', intOption('--seq'))
    .option('--accum <n>', 'micro-batches per step (gradient accumulation)', intOption('--accum'))
    .option('--lr <x>', 'peak learning rate', numberOption('--lr'))
    .option('--out <dir>', 'checkpoint directory (default: runs/<preset>, or the resumed run\'s directory); a directory holding a run is refused unless --resume or --force')
    .option('--force', 'replace the run already in --out (its checkpoints are removed)')
    .option('--checkpoint-every <n>', 'also save every n steps', intOption('--checkpoint-every'))
    .option('--resume <dir>', 'continue from a checkpoint (or a run directory) with its options and seed; flags given override them, and say so')
    .option('--on-non-finite <what>', "'skip' the step (default) or 'stop' training on a NaN/Inf gradient")
    .option('--json', 'one JSON line per step on stdout, then a summary line')
    .option('--distributed', 'data parallel over the processes of `mpirun -n N` (MPI on CPUs, NCCL on GPUs); --batch is the global batch')
    .option('--seed <n>', 'seed of initialisation and data order (default: 1; a resumed run keeps its own)', intOption('--seed', 0))
    .action(async (o: TrainCliOptions) => {
      await runTrain(o);
    });
}
