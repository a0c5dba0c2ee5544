// Training checkpoints: a directory per save with model.safetensors (master weights, readable
// names), optimizer.safetensors (AdamW moments) and state.json (config, step, optimiser step, data
// position, options, and the sha256 of each file). Written into a temporary directory, every file
// fsynced, then renamed into place and `latest` updated by rename: a crash never leaves a
// checkpoint half-written, and a corrupted file is a clear error at load.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { MixtError } from '../core/errors';
import { ModelConfig, finalNormGroups, routesDepthIn } from '../model/config';
import { Model } from '../model/model';
import { Safetensors, StoredTensor, decodeSafetensors, safetensorsParts } from '../model/safetensors';
import { exportParameters, exportTensor, importParameters, tensorLoadable } from '../model/weights';
import { LoaderState } from './data/loader';
import { AdamW } from './optimizer';
import { nextTurn } from '../core/runtime';

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

// Streams byte ranges into a new file and fsyncs it, off the JS thread (writes and fsync run on the
// libuv pool); the sha256 is updated a slice at a time between writes, so no step blocks the event
// loop for long (1 MiB: about 1 ms of hashing with SHA instructions, a few without). Returns the sha256.
const WRITE_SLICE = 1 << 20;
async function writeSyncedAsync(file: string, parts: readonly Uint8Array[]): Promise<string> {
  const hash = createHash('sha256');
  const fh = await fs.promises.open(file, 'w');
  try {
    for (const part of parts) {
      for (let at = 0; at < part.length; at += WRITE_SLICE) {
        const slice = part.subarray(at, Math.min(part.length, at + WRITE_SLICE));
        hash.update(slice);
        await fh.write(slice);
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

// A directory's entries made durable (after a rename into it); on the libuv pool like every other
// write of a save, so no fsync ever waits on the JS thread.
async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const modalityNames = (m: Model) => m.cfg.modalities.map((x) => x.name);

const STEP_DIR = /^step-(\d+)$/;
const TEMP_ENTRY = /^(?:step-\d+|latest)\.tmp-(\d+)(?:-\d+)?$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Temporary entries of saves killed before their rename (their process is gone) are removed.
async function removeStaleTemporaries(outDir: string): Promise<void> {
  for (const f of await fs.promises.readdir(outDir)) {
    const m = TEMP_ENTRY.exec(f);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) await fs.promises.rm(path.join(outDir, f), { recursive: true, force: true });
  }
}

const stepDirName = (step: number) => `step-${String(step).padStart(6, '0')}`;

// The step `<dir>/latest` points at, or undefined when the directory holds no run.
export function latestStep(dir: string): number | undefined {
  let name: string;
  try {
    name = fs.readFileSync(path.join(dir, 'latest'), 'utf8').trim();
  } catch {
    return undefined;
  }
  const m = STEP_DIR.exec(name);
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
  await removeStaleTemporaries(outDir);
  const names = modalityNames(model);
  const weights = safetensorsParts(await exportParameters(model.parameters(), names), { format: 'mixt', kind: 'model' });
  const moments = new Map<string, StoredTensor>();
  for (const p of opt.params) {
    await exportTensor(moments, `m.${p.name}`, opt.m.get(p)!, p.groups, names);
    await exportTensor(moments, `v.${p.name}`, opt.v.get(p)!, p.groups, names);
  }
  const optim = safetensorsParts(moments, { format: 'mixt', kind: 'adamw' });
  const final = path.join(outDir, stepDirName(train.step));
  const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp);
  const files = {
    'model.safetensors': await writeSyncedAsync(path.join(tmp, 'model.safetensors'), weights),
    'optimizer.safetensors': await writeSyncedAsync(path.join(tmp, 'optimizer.safetensors'), optim),
  };
  const state: StateFile = { format: 'mixt-checkpoint', version: 1, config: model.cfg, train, files };
  await writeSyncedAsync(path.join(tmp, 'state.json'), [Buffer.from(JSON.stringify(state, null, 1), 'utf8')]);
  await fsyncDir(tmp);
  await fs.promises.rm(final, { recursive: true, force: true });
  await fs.promises.rename(tmp, final);
  await fsyncDir(outDir);
  const latestTmp = path.join(outDir, `latest.tmp-${process.pid}`);
  await writeSyncedAsync(latestTmp, [Buffer.from(path.basename(final) + '\n', 'utf8')]);
  await fs.promises.rename(latestTmp, path.join(outDir, 'latest'));
  await fsyncDir(outDir);
  return final;
}

export interface LoadedCheckpoint {
  dir: string;
  config: ModelConfig;
  train: TrainState;
  weights: Safetensors;
  optimizer: Safetensors;
}

// Accepts a checkpoint directory or a run directory: its `latest`, or, when `latest` is missing or
// names nothing (a save killed before its first `latest`), the newest complete step-* directory
// (a step directory exists only once renamed into place, complete).
export function resolveCheckpoint(p: string): string {
  const latest = path.join(p, 'latest');
  if (fs.existsSync(latest)) {
    const named = path.join(p, fs.readFileSync(latest, 'utf8').trim());
    if (fs.existsSync(path.join(named, 'state.json'))) return named;
  }
  if (fs.existsSync(path.join(p, 'state.json')) || !fs.existsSync(p)) return p;
  const steps = fs.readdirSync(p)
    .filter((f) => STEP_DIR.test(f) && fs.existsSync(path.join(p, f, 'state.json')))
    .sort((a, b) => Number(STEP_DIR.exec(b)![1]) - Number(STEP_DIR.exec(a)![1]));
  return steps.length ? path.join(p, steps[0]) : p;
}

// Master weights and moments are f32 or f64, one dtype per file, and finite: a relabelled dtype or
// NaN/Inf weights (which a valid sha256 does not rule out) are refused, naming the tensor. Yields
// every VALIDATE_SLICE elements, so that the async loader can give the event loop its turns.
const VALIDATE_SLICE = 1 << 20;
function* validateStored(file: string, st: Safetensors, fail: (why: string) => never): Generator<void> {
  let dtype: string | undefined;
  for (const [name, t] of st.tensors) {
    if (t.dtype !== 'f32' && t.dtype !== 'f64') fail(`${file}: tensor ${name} has dtype ${t.dtype}, expected f32 or f64 (master weights)`);
    if (dtype && t.dtype !== dtype) fail(`${file}: tensor ${name} has dtype ${t.dtype}, the file's other tensors are ${dtype}`);
    dtype = t.dtype;
    const values = t.dtype === 'f32'
      ? new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)
      : new Float64Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 8);
    for (let at = 0; at < values.length; at += VALIDATE_SLICE) {
      const end = Math.min(values.length, at + VALIDATE_SLICE);
      for (let i = at; i < end; i++) {
        if (!Number.isFinite(values[i])) fail(`${file}: tensor ${name} holds a non-finite value (${values[i]} at element ${i})`);
      }
      yield;
    }
  }
}

// What both loaders share: the directory, its state.json checked, and how they fail.
function openCheckpoint(p: string): { dir: string; state: StateFile; fail: (why: string) => never } {
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
  return { dir, state, fail };
}

const WEIGHT_FILES = ['model.safetensors', 'optimizer.safetensors'] as const;

function* decodeChecked(dir: string, state: StateFile, fail: (why: string) => never, name: string, bytes: Buffer, digest: string): Generator<void, Safetensors> {
  if (state.files?.[name] !== digest) fail(`${name} is corrupted (sha256 mismatch)`);
  const st = decodeSafetensors(bytes, `${dir}/${name}`);
  yield* validateStored(name, st, fail);
  return st;
}

// Runs a generator to its end at once (the synchronous loader), or a turn of the event loop per yield.
function drain<T>(g: Generator<void, T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}
async function drainAsync<T>(g: Generator<void, T>): Promise<T> {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
    await nextTurn();
  }
}

// Loads a checkpoint synchronously (reads, hashes and checks on the calling thread). Services should
// prefer loadCheckpointAsync, which keeps the event loop free.
export function loadCheckpoint(p: string): LoadedCheckpoint {
  const { dir, state, fail } = openCheckpoint(p);
  const [weights, optimizer] = WEIGHT_FILES.map((name) => {
    let b: Buffer;
    try {
      b = fs.readFileSync(path.join(dir, name));
    } catch {
      return fail(`${name} is missing`);
    }
    return drain(decodeChecked(dir, state, fail, name, b, sha256(b)));
  });
  return { dir, config: olderDefaults(state.config, weights.tensors), train: state.train, weights, optimizer };
}

// The same checks, with reads on the libuv pool and the sha256 computed a slice at a time between
// turns of the event loop.
export async function loadCheckpointAsync(p: string): Promise<LoadedCheckpoint> {
  const { dir, state, fail } = openCheckpoint(p);
  const loaded: Safetensors[] = [];
  for (const name of WEIGHT_FILES) {
    let b: Buffer;
    try {
      b = await fs.promises.readFile(path.join(dir, name));
    } catch {
      return fail(`${name} is missing`);
    }
    const hash = createHash('sha256');
    for (let at = 0; at < b.length; at += WRITE_SLICE) {
      hash.update(b.subarray(at, Math.min(b.length, at + WRITE_SLICE)));
      await nextTurn();
    }
    loaded.push(await drainAsync(decodeChecked(dir, state, fail, name, b, hash.digest('hex'))));
  }
  return { dir, config: olderDefaults(state.config, loaded[0].tensors), train: state.train, weights: loaded[0], optimizer: loaded[1] };
}

export interface CheckpointInfo {
  dir: string;
  config: ModelConfig;
  train: TrainState;
}

// What a checkpoint is (its directory, config and training state) without reading its weights:
// state.json and the weight file's header (the names of the tensors). A front end decides with it
// what to build before the weights are loaded.
export async function readCheckpointInfo(p: string): Promise<CheckpointInfo> {
  const { dir, state, fail } = openCheckpoint(p);
  let names: Set<string>;
  try {
    names = new Set(Object.keys(await readSafetensorsHeader(path.join(dir, WEIGHT_FILES[0]))));
  } catch (e) {
    return fail(`${WEIGHT_FILES[0]} is missing or its header does not parse (${(e as Error).message})`);
  }
  return { dir, config: olderDefaults(state.config, names), train: state.train };
}

async function readSafetensorsHeader(file: string): Promise<Record<string, unknown>> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const len = Buffer.alloc(8);
    await fh.read(len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    if (n > 100 * 2 ** 20) throw new RangeError(`header length ${n}`);
    const head = Buffer.alloc(n);
    const { bytesRead } = await fh.read(head, 0, n, 8);
    if (bytesRead !== n) throw new RangeError(`header of ${n} bytes, the file has ${bytesRead} after its length`);
    return JSON.parse(head.toString('utf8'));
  } finally {
    await fh.close();
  }
}

// A config written before the resolved defaults were saved with it (no `finalNorm` field) means
// what those older defaults meant: models with no modality-untied block (dense, moe) kept a final
// norm per modality (final_norm.weight.{modality}, found in the weights), and Mixture-of-Depths
// blocks multiplied the update by the raw router logit.
function olderDefaults(config: ModelConfig, weightNames: { has(name: string): boolean }): ModelConfig {
  if (!config || config.finalNorm !== undefined || !Array.isArray(config.modalities) || !Array.isArray(config.blocks)) return config;
  const perModality = config.modalities.length > 1 && config.modalities.every((m) => weightNames.has(`final_norm.weight.${m.name}`));
  const routesDepth = routesDepthIn(config);
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
