// Training checkpoints: a directory per save with model.safetensors (master weights, readable
// names), optimizer.safetensors (AdamW moments) and state.json (config, step, optimiser step, data
// position, options, and the sha256 of each file). Written into a temporary directory, every file
// fsynced, then renamed into place and `latest` updated by rename: a crash never leaves a
// checkpoint half-written, and a corrupted file is a clear error at load.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { MixtError } from '../core/errors';
import { ModelConfig } from '../model/config';
import { Model } from '../model/model';
import { Safetensors, StoredTensor, decodeSafetensors, encodeSafetensors } from '../model/safetensors';
import { exportParameters, exportTensor, importParameters, tensorLoadable } from '../model/weights';
import { LoaderState } from './data/loader';
import { AdamW } from './optimizer';

export interface TrainState {
  step: number;
  tokens: number;
  optimizerStep: number;
  loader: LoaderState;
  options: Record<string, unknown>;
  history?: unknown[];
  rng?: { seed: number; offset: number }; // the diffusion-noise generator (Transfusion)
}

interface StateFile {
  format: 'mixt-checkpoint';
  version: 1;
  config: ModelConfig;
  train: TrainState;
  files: Record<string, string>; // name -> sha256
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function writeSynced(file: string, data: Buffer | string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const modalityNames = (m: Model) => m.cfg.modalities.map((x) => x.name);

const stepDirName = (step: number) => `step-${String(step).padStart(6, '0')}`;

// The step `<dir>/latest` points at, or undefined when the directory holds no run.
export function latestStep(dir: string): number | undefined {
  let name: string;
  try {
    name = fs.readFileSync(path.join(dir, 'latest'), 'utf8').trim();
  } catch {
    return undefined;
  }
  const m = /^step-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

// The run directory of a checkpoint path: a run directory itself, or the parent of a step-N directory.
export function runDirectory(p: string): string {
  const isStep = /^step-\d+$/.test(path.basename(path.resolve(p))) && fs.existsSync(path.join(p, 'state.json'));
  return isStep ? path.dirname(p.replace(/[\/]+$/, '')) : p;
}

// Removes a run's checkpoints (step-N directories and their leftovers, `latest`) and nothing else;
// with `after`, only the checkpoints of later steps (and `latest` if it pointed at one).
export function clearRun(dir: string, after = -1): void {
  if (!fs.existsSync(dir)) return;
  const latest = latestStep(dir);
  for (const f of fs.readdirSync(dir)) {
    const m = /^step-(\d+)(\.tmp-.*)?$/.exec(f);
    if ((m && Number(m[1]) > after) || (/^latest(\.tmp-.*)?$/.test(f) && (latest === undefined || latest > after))) {
      fs.rmSync(path.join(dir, f), { recursive: true, force: true });
    }
  }
}

// Saves to <outDir>/step-<step>/ and points <outDir>/latest at it. Returns the directory. Refuses
// (ERR_CHECKPOINT, before writing anything) when `latest` already points at a later step: a run
// never moves another run's newer checkpoint out of sight, nor overwrites it.
export async function saveCheckpoint(outDir: string, model: Model, opt: AdamW, train: TrainState): Promise<string> {
  const newer = latestStep(outDir);
  if (newer !== undefined && newer > train.step) {
    throw new MixtError(
      `saveCheckpoint: ${outDir} already holds a later checkpoint (step ${newer}) than this one (step ${train.step}); ` +
        'save into another directory, or remove that run first',
      'ERR_CHECKPOINT',
    );
  }
  fs.mkdirSync(outDir, { recursive: true });
  const names = modalityNames(model);
  const weights = encodeSafetensors(await exportParameters(model.parameters(), names), { format: 'mixt', kind: 'model' });
  const moments = new Map<string, StoredTensor>();
  for (const p of opt.params) {
    await exportTensor(moments, `m.${p.name}`, opt.m.get(p)!, p.groups, names);
    await exportTensor(moments, `v.${p.name}`, opt.v.get(p)!, p.groups, names);
  }
  const optim = encodeSafetensors(moments, { format: 'mixt', kind: 'adamw' });
  const final = path.join(outDir, stepDirName(train.step));
  const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp);
  writeSynced(path.join(tmp, 'model.safetensors'), weights);
  writeSynced(path.join(tmp, 'optimizer.safetensors'), optim);
  const state: StateFile = {
    format: 'mixt-checkpoint',
    version: 1,
    config: model.cfg,
    train,
    files: { 'model.safetensors': sha256(weights), 'optimizer.safetensors': sha256(optim) },
  };
  writeSynced(path.join(tmp, 'state.json'), JSON.stringify(state, null, 1));
  fsyncDir(tmp);
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(tmp, final);
  fsyncDir(outDir);
  const latestTmp = path.join(outDir, `latest.tmp-${process.pid}`);
  writeSynced(latestTmp, path.basename(final) + '\n');
  fs.renameSync(latestTmp, path.join(outDir, 'latest'));
  fsyncDir(outDir);
  return final;
}

export interface LoadedCheckpoint {
  dir: string;
  config: ModelConfig;
  train: TrainState;
  weights: Safetensors;
  optimizer: Safetensors;
}

// Accepts a checkpoint directory or a run directory holding `latest`.
export function resolveCheckpoint(p: string): string {
  const latest = path.join(p, 'latest');
  if (fs.existsSync(latest)) return path.join(p, fs.readFileSync(latest, 'utf8').trim());
  return p;
}

export function loadCheckpoint(p: string): LoadedCheckpoint {
  const dir = resolveCheckpoint(p);
  const fail = (why: string): never => {
    throw new MixtError(`checkpoint ${dir}: ${why}`, 'ERR_CHECKPOINT');
  };
  let state: StateFile;
  try {
    state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
  } catch (e) {
    return fail(`state.json is missing or does not parse (${(e as Error).message})`);
  }
  if (state.format !== 'mixt-checkpoint' || state.version !== 1) fail('not a mixt checkpoint (format/version)');
  const read = (name: string): Buffer => {
    let b: Buffer;
    try {
      b = fs.readFileSync(path.join(dir, name));
    } catch {
      return fail(`${name} is missing`);
    }
    if (state.files?.[name] !== sha256(b)) fail(`${name} is corrupted (sha256 mismatch)`);
    return b;
  };
  return {
    dir,
    config: state.config,
    train: state.train,
    weights: decodeSafetensors(read('model.safetensors'), `${dir}/model.safetensors`),
    optimizer: decodeSafetensors(read('optimizer.safetensors'), `${dir}/optimizer.safetensors`),
  };
}

// Puts loaded weights (and moments, when an optimiser is given) into place.
export function restoreCheckpoint(ck: LoadedCheckpoint, model: Model, opt?: AdamW): void {
  const names = modalityNames(model);
  importParameters(model.parameters(), ck.weights.tensors, names, ck.dir, model.device);
  if (!opt) return;
  const moments = opt.params.flatMap((p) => [
    tensorLoadable(`m.${p.name}`, p.groups, opt.m.get(p)!),
    tensorLoadable(`v.${p.name}`, p.groups, opt.v.get(p)!),
  ]);
  importParameters(moments, ck.optimizer.tensors, names, ck.dir, model.device);
  opt.step = ck.train.optimizerStep;
}
