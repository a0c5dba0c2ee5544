// `mixt train`: trains a model on the embedded multimodal corpus (or a packed token file), shows
// per-modality loss, tokens/s and (CUDA) MFU on stderr, saves checkpoints, ends with a summary.
import { Command } from 'commander';
import * as cliProgress from 'cli-progress';
import Table from 'cli-table3';
import * as fs from 'fs';
import { BLOCK_KINDS, BlockKind, ModelConfig, PRESETS, PresetName, parameterCount, presetConfig, validateConfig } from '../model/config';
import { MixtModel } from '../api/model';
import { train } from '../api/train';
import { Model } from '../model/model';
import { loadCheckpoint } from '../train/checkpoint';
import { TokenDataset, shapesCorpus, unigramEntropy } from '../train/data/dataset';
import { readTokenFile } from '../train/data/tokenfile';
import { PATCH_DIM, transfusionCorpus } from '../train/data/transfusion';
import { StepReport, TRAIN_DEFAULTS, TrainOptions } from '../train/trainer';
import { deviceName, fmt, intOption, numberOption, pickDevice } from './common';

// Defaults per preset: the tiny one finishes in about two minutes on 2 CPU cores.
const RUN_DEFAULTS: Record<PresetName, { steps: number; batch: number; seq: number; lr: number }> = {
  tiny: { steps: 1000, batch: 4, seq: 256, lr: 4e-3 },
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
  seed: number;
  checkpointEvery?: number;
  onNonFinite?: 'skip' | 'stop';
  quiet?: boolean;
}

// The data of an objective: a token file, or the embedded corpus (its training split: 20000 documents;
// its held-out shape/colour pairs: 2000). Transfusion trains and is judged on continuous pictures.
export function loadData(path?: string, objective: 'ar' | 'transfusion' = 'ar', split: 'train' | 'eval' = 'train'): TokenDataset {
  const [docs, seed] = split === 'train' ? [20000, 1] : [2000, 2];
  if (objective === 'transfusion') {
    if (path) throw new RangeError('--data: the Transfusion objective uses the embedded corpus\'s continuous pictures; --data is for token files');
    return transfusionCorpus({ docs, seed, split });
  }
  return path ? readTokenFile(path) : shapesCorpus({ docs, seed, split });
}

// One kind for every layer, or a comma-separated pattern repeated over the layers
// ("mot,mod": Mixture-of-Depths every other layer).
export function parseBlocks(spec: string | undefined, layers: number): BlockKind[] {
  const parts = (spec ?? 'mot').split(',').map((s) => s.trim()).filter(Boolean) as BlockKind[];
  if (!parts.length) throw new RangeError('--blocks: give at least one block kind');
  return Array.from({ length: layers }, (_, i) => parts[i % parts.length]);
}

export interface TrainResult {
  model: MixtModel;
  history: StepReport[];
  tokens: number;
  entropy: number[];
  first: StepReport;
  last: StepReport;
  checkpoint: string;
}

export async function runTrain(o: TrainCliOptions): Promise<TrainResult> {
  const choice = pickDevice(o.device, o.quiet);
  const out = o.out ?? `runs/${o.preset}`;
  const objective = o.objective ?? 'ar';
  if (objective !== 'ar' && objective !== 'transfusion') throw new RangeError(`--objective must be 'ar' or 'transfusion', received "${objective}"`);
  const data = loadData(o.data, objective);
  const vocab = { size: data.vocab.size, modalities: data.vocab.modalities.map((m) => ({ name: m.name, range: m.range })) };
  const resumed = o.resume ? loadCheckpoint(o.resume) : null;
  const preset = o.preset;
  if (!PRESETS[preset]) throw new RangeError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, received "${preset}"`);
  let cfg: ModelConfig;
  if (resumed) cfg = validateConfig(resumed.config);
  else {
    const overrides = o.config ? (JSON.parse(fs.readFileSync(o.config, 'utf8')) as Partial<ModelConfig>) : {};
    cfg = presetConfig(preset, vocab, parseBlocks(o.blocks, overrides.layers ?? PRESETS[preset].layers), {
      ...(objective === 'transfusion' ? { transfusion: { patchDim: PATCH_DIM, lambda: 5, timesteps: 1000 } } : {}),
      ...overrides,
    });
  }
  if (cfg.vocabSize !== data.vocab.size) throw new RangeError(`the data's vocabulary (${data.vocab.size}) does not match the model's (${cfg.vocabSize})`);
  const d = RUN_DEFAULTS[preset];
  const opts: TrainOptions = {
    ...TRAIN_DEFAULTS,
    ...((resumed?.train.options ?? {}) as Partial<TrainOptions>),
    steps: o.steps ?? (resumed?.train.options.steps as number) ?? d.steps,
    batch: o.batch ?? (resumed?.train.options.batch as number) ?? d.batch,
    seqLen: o.seq ?? (resumed?.train.options.seqLen as number) ?? Math.min(d.seq, cfg.maxSeqLen),
    lr: o.lr ?? (resumed?.train.options.lr as number) ?? d.lr,
    seed: o.seed,
    ...(o.accum ? { accum: o.accum } : {}),
    ...(o.onNonFinite ? { onNonFinite: o.onNonFinite } : {}),
  };
  opts.minLr = opts.lr / 10;
  const model = new MixtModel(new Model(cfg, { device: choice.device, seed: opts.seed }), opts.seed);
  const entropy = unigramEntropy(data);
  const names = cfg.modalities.map((m) => m.name);
  const counts = parameterCount(cfg);
  if (!o.quiet) {
    process.stderr.write(
      `mixt: ${preset} ${cfg.blocks.every((b) => b === cfg.blocks[0]) ? cfg.blocks[0] : cfg.blocks.join(',')} model, ` +
        `${(counts.total / 1e6).toFixed(2)}M parameters (${(counts.activePerToken / 1e6).toFixed(2)}M active per token), ` +
        `${names.length} modalities (${names.join(', ')}), ${opts.steps} steps of ${opts.batch}x${opts.seqLen} tokens\n`,
    );
  }
  const bar =
    o.json || o.quiet
      ? null
      : new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: 'train {bar} {value}/{total} | loss {loss} | {mods} | {tps} tok/s{mfu}',
            hideCursor: true,
            noTTYOutput: !process.stderr.isTTY,
            notTTYSchedule: 5000,
          },
          cliProgress.Presets.shades_classic,
        );
  bar?.start(opts.steps, resumed?.train.step ?? 0, { loss: '-', mods: '', tps: '-', mfu: '' });
  // the library's training run; the CLI only shows it
  const run = train(model, data, { ...opts, out, checkpointEvery: o.checkpointEvery, resume: o.resume, deviceName: deviceName(choice) });
  for await (const r of run) {
    if (o.json) process.stdout.write(JSON.stringify({ type: 'step', ...r }) + '\n');
    bar?.update(r.step, {
      loss: fmt(r.loss),
      mods: r.modalities.map((m) => `${m.name} ${m.targets ? fmt(m.loss, 2) : '-'}`).join(' ') + (r.diffusionLoss !== undefined ? ` diffusion ${fmt(r.diffusionLoss, 3)}` : ''),
      tps: Math.round(r.tokensPerSecond),
      mfu: (r.mfu !== undefined ? ` | MFU ${(100 * r.mfu).toFixed(1)}%` : '') + routingSummary(r),
    });
  }
  bar?.stop();
  const s = await run.summary;
  const checkpoint = s.checkpoint!;
  const fallback = s.history[s.history.length - 1];
  const first = s.first ?? fallback, last = s.last ?? fallback;
  const result: TrainResult = { model, history: s.history, tokens: s.tokens, entropy, first, last, checkpoint };
  if (o.json) process.stdout.write(JSON.stringify({ type: 'summary', checkpoint, entropy, first, last }) + '\n');
  else if (!o.quiet) printSummary(result);
  return result;
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
  const t = new Table({ head: ['modality', 'unigram entropy', 'first loss', 'final loss', 'final accuracy', 'targets/step'] });
  // A modality with no next-token targets (pictures under --objective transfusion) shows '-', not NaN.
  const loss = (m: { loss: number; targets: number }) => (m.targets ? fmt(m.loss) : '-');
  r.last.modalities.forEach((m, i) => {
    const continuous = !m.targets && r.last.diffusionLoss !== undefined;
    t.push([m.name, continuous ? '-' : fmt(r.entropy[i]), loss(r.first.modalities[i]), loss(m), m.targets ? `${(100 * m.accuracy).toFixed(1)}%` : '-', continuous ? '0 (diffusion)' : String(m.targets)]);
  });
  const h = r.history;
  const tps = h.reduce((a, x) => a + x.tokens, 0) / (h.reduce((a, x) => a + x.ms, 0) / 1000);
  console.log(t.toString());
  if (r.last.diffusionLoss !== undefined) console.log(`diffusion (MSE of the noise prediction): first ${fmt(r.first.diffusionLoss!)}, final ${fmt(r.last.diffusionLoss)}`);
  console.log(`${r.last.step} steps, ${r.tokens} tokens, ${Math.round(tps)} tokens/s${r.last.mfu !== undefined ? `, MFU ${(100 * r.last.mfu).toFixed(1)}%` : ''}`);
  console.log(`checkpoint: ${r.checkpoint}`);
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a model (default: the tiny preset on the embedded multimodal shapes corpus)')
    .option('--preset <name>', 'tiny | small | medium', 'tiny')
    .option('--objective <kind>', "'ar' (next token everywhere) or 'transfusion' (continuous pictures with a diffusion loss)", 'ar')
    .option('--config <file>', 'model config JSON (fields override the preset)')
    .option('--blocks <kinds>', `block kind of every layer, or a comma-separated pattern repeated over the layers (${BLOCK_KINDS.join(', ')})`)
    .option('--data <file>', 'a packed token file (.mixt); default: the embedded corpus')
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N' (default: auto, or MIXT_DEVICE)")
    .option('--steps <n>', 'optimisation steps', intOption('--steps'))
    .option('--batch <n>', 'sequences per micro-batch', intOption('--batch'))
    .option('--seq <n>', 'sequence length', intOption('--seq'))
    .option('--accum <n>', 'micro-batches per step (gradient accumulation)', intOption('--accum'))
    .option('--lr <x>', 'peak learning rate', numberOption('--lr'))
    .option('--out <dir>', 'checkpoint directory (default: runs/<preset>)')
    .option('--checkpoint-every <n>', 'also save every n steps', intOption('--checkpoint-every'))
    .option('--resume <dir>', 'continue from a checkpoint (or a run directory)')
    .option('--on-non-finite <what>', "'skip' the step or 'stop' training on a NaN/Inf gradient", 'skip')
    .option('--json', 'one JSON line per step on stdout, then a summary line')
    .option('--seed <n>', 'seed of initialisation and data order', intOption('--seed', 0), 1)
    .action(async (o: TrainCliOptions) => {
      await runTrain(o);
    });
}
