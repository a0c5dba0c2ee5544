// Training checkpoints: a directory per save with model.safetensors (master weights, readable
// names), optimizer.safetensors (AdamW moments) and state.json (config, step, optimiser step, data
// position, options, and the sha256 of each file). Written into a temporary directory, every file
// fsynced, then renamed into place and `latest` updated by rename: a crash never leaves a
// checkpoint half-written, and a corrupted file is a clear error at load.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { MixtError } from '../core/errors';
import { ModelConfig, finalNormGroups } from '../model/config';
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

// Saves to <outDir>/step-<step>/ and points <outDir>/latest at it. Returns the directory.
export async function saveCheckpoint(outDir: string, model: Model, opt: AdamW, train: TrainState): Promise<string> {
  fs.mkdirSync(outDir, { recursive: true });
  const names = modalityNames(model);
  const weights = encodeSafetensors(await exportParameters(model.parameters(), names), { format: 'mixt', kind: 'model' });
  const moments = new Map<string, StoredTensor>();
  for (const p of opt.params) {
    await exportTensor(moments, `m.${p.name}`, opt.m.get(p)!, p.groups, names);
    await exportTensor(moments, `v.${p.name}`, opt.v.get(p)!, p.groups, names);
  }
  const optim = encodeSafetensors(moments, { format: 'mixt', kind: 'adamw' });
  const final = path.join(outDir, `step-${String(train.step).padStart(6, '0')}`);
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
  const weights = decodeSafetensors(read('model.safetensors'), `${dir}/model.safetensors`);
  return {
    dir,
    config: olderDefaults(state.config, weights),
    train: state.train,
    weights,
    optimizer: decodeSafetensors(read('optimizer.safetensors'), `${dir}/optimizer.safetensors`),
  };
}

// A config written before the resolved defaults were saved with it (no `finalNorm` field) means
// what those older defaults meant: models with no modality-untied block (dense, moe) kept a final
// norm per modality (final_norm.weight.{modality}, found in the weights), and Mixture-of-Depths
// blocks multiplied the update by the raw router logit.
function olderDefaults(config: ModelConfig, weights: Safetensors): ModelConfig {
  if (!config || config.finalNorm !== undefined || !Array.isArray(config.modalities) || !Array.isArray(config.blocks)) return config;
  const perModality = config.modalities.length > 1 && config.modalities.every((m) => weights.tensors.has(`final_norm.weight.${m.name}`));
  const routesDepth = config.blocks.some((b) => b === 'mod' || b === 'mode-staged');
  return {
    ...config,
    ...(perModality && finalNormGroups(config) === 1 ? { finalNorm: 'modality' as const } : {}),
    ...(routesDepth && config.mod?.gate === undefined ? { mod: { ...(config.mod ?? {}), gate: 'raw' as const } } : {}),
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
