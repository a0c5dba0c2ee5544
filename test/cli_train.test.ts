// `mixt train` as a user meets it: resume continues where it came from (its directory, its options,
// its seed) and never moves a run backwards; a new run never takes over another run's directory;
// the memory and time of a step are estimated before anything is built, and a run that cannot fit
// is refused with the numbers.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as mixt from '../lib';
import { table, useColor } from '../lib/cli/common';
import { presetConfig } from '../lib/model/config';
import { Model } from '../lib/model/model';
import { latestStep, loadCheckpoint } from '../lib/train/checkpoint';
import { shapesCorpus } from '../lib/train/data/dataset';
import { SHAPES_VOCAB } from '../lib/train/data/shapes';
import { describeEstimate, estimateStep, estimateWarnings } from '../lib/train/estimate';
import { resumedOptions } from '../lib/train/resume';
import { TRAIN_DEFAULTS, Trainer } from '../lib/train/trainer';

const root = path.resolve(__dirname, '..');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-cli-'));

function mixtCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'mixt.js'), ...args], {
    cwd, encoding: 'utf8', timeout: 300000, env: { ...process.env, MIXT_DEVICE: 'cpu', MIXT_SKIP_LOAD_CHECK: '1', ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// A model small enough for a CLI round trip in a second or two.
function smallRun(dir: string): string[] {
  const cfg = path.join(dir, 'config.json');
  fs.writeFileSync(cfg, JSON.stringify({ dModel: 16, layers: 1, heads: 2, kvHeads: 1, ffnHidden: 24 }));
  return ['train', '--config', cfg, '--batch', '2', '--seq', '64', '--device', 'cpu'];
}

const bytesOf = (dir: string) => fs.readFileSync(path.join(dir, 'model.safetensors'));

describe('mixt train --resume', () => {
  test('resume without --seed is bit-exact with an uninterrupted run of another seed', () => {
    const dir = tmp();
    const train = smallRun(dir);
    // uninterrupted: 8 steps, seed 7 (not the default 1), a checkpoint at step 4 on the way
    expect(mixtCli([...train, '--steps', '8', '--seed', '7', '--checkpoint-every', '4', '--out', 'a', '--json'], dir).status).toBe(0);
    // interrupted after step 4: a run directory holding only that checkpoint
    fs.mkdirSync(path.join(dir, 'b'));
    fs.cpSync(path.join(dir, 'a', 'step-000004'), path.join(dir, 'b', 'step-000004'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'b', 'latest'), 'step-000004\n');
    const r = mixtCli([...train, '--resume', 'b', '--json'], dir);
    expect(r.stderr).toMatch(/seed 7/);
    expect(r.stderr).not.toMatch(/overrides/);
    expect(r.status).toBe(0);
    // continued in b (not runs/<preset>), up to the checkpoint's own 8 steps, with the same weights
    expect(latestStep(path.join(dir, 'b'))).toBe(8);
    expect(fs.existsSync(path.join(dir, 'runs'))).toBe(false);
    expect(bytesOf(path.join(dir, 'b', 'step-000008')).equals(bytesOf(path.join(dir, 'a', 'step-000008')))).toBe(true);
    // and a flag given on resume overrides the checkpoint, saying so
    const c = mixtCli([...train, '--resume', 'a', '--steps', '9', '--seed', '3', '--out', 'c'], dir);
    expect(c.status).toBe(0);
    expect(c.stderr).toMatch(/--seed 3 overrides the checkpoint's 7/);
    expect(loadCheckpoint(path.join(dir, 'c')).train.options.seed).toBe(3);
  });

  test('a --steps not beyond the checkpoint is refused and nothing moves; tokens/s is the resumed part', () => {
    const dir = tmp();
    const train = smallRun(dir);
    expect(mixtCli([...train, '--steps', '6', '--checkpoint-every', '3', '--out', 'run'], dir).status).toBe(0);
    const before = fs.readdirSync(path.join(dir, 'run')).sort();
    for (const steps of ['6', '4']) {
      const r = mixtCli([...train, '--resume', 'run', '--steps', steps], dir);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`--steps ${steps} is not beyond the checkpoint's step \\(6\\)`));
    }
    expect(mixtCli([...train, '--resume', 'run'], dir).stderr).toMatch(/run is complete \(step 6 of 6\); give --steps beyond 6/);
    // resuming an older checkpoint into the directory of a newer one is refused: latest stays
    const older = mixtCli([...train, '--resume', path.join('run', 'step-000003'), '--steps', '10'], dir);
    expect(older.status).toBe(1);
    expect(older.stderr).toMatch(/holds a later checkpoint \(step 6\) than the one resumed \(step 3\)/);
    expect(fs.readdirSync(path.join(dir, 'run')).sort()).toEqual(before);
    expect(latestStep(path.join(dir, 'run'))).toBe(6);
    // a real continuation: the summary's tokens/s is this run's (its steps' tokens over their time)
    const r = mixtCli([...train, '--resume', 'run', '--steps', '9', '--json'], dir);
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const steps = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.type === 'step');
    expect(steps.map((s: { step: number }) => s.step)).toEqual([7, 8, 9]);
    expect(summary.run.steps).toBe(3);
    const tps = steps.reduce((a: number, s: { tokens: number }) => a + s.tokens, 0) / (steps.reduce((a: number, s: { ms: number }) => a + s.ms, 0) / 1000);
    expect(summary.run.tokensPerSecond).toBeCloseTo(tps, 6);
    expect(latestStep(path.join(dir, 'run'))).toBe(9);
    const text = mixtCli([...train, '--resume', 'run', '--steps', '10'], dir);
    expect(text.stdout).toMatch(/10 steps \(1 in this run, resumed at step 9\), \d+ tokens, \d+ tokens\/s in this run/);
  });

  test('saveCheckpoint refuses to move latest to an older step (library, not only the CLI)', async () => {
    const dir = tmp();
    const data = shapesCorpus({ docs: 200, seed: 1 });
    const cfg = presetConfig('tiny', SHAPES_VOCAB, 'mot', { dModel: 16, layers: 1, heads: 2, kvHeads: 1, ffnHidden: 24, maxSeqLen: 64 });
    const make = () => new Trainer(new Model(cfg, { device: mixt.Device.cpu, seed: 1 }), data, { ...TRAIN_DEFAULTS, steps: 4, batch: 1, seqLen: 64 });
    const ahead = make();
    for (let i = 0; i < 3; i++) await ahead.trainStep();
    await ahead.save(dir);
    const behind = make();
    await behind.trainStep();
    await expect(behind.save(dir)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/later checkpoint \(step 3\) than this one \(step 1\)/) });
    expect(latestStep(dir)).toBe(3);
    expect(fs.existsSync(path.join(dir, 'step-000001'))).toBe(false);
    await ahead.trainStep();
    await ahead.save(dir); // forward is fine
    expect(latestStep(dir)).toBe(4);
    for (const t of [ahead, behind]) {
      t.dispose();
      t.model.dispose();
    }
  });

  test('resumedOptions keeps the checkpoint\'s options, lists overrides, keeps the schedule\'s floor ratio', () => {
    const saved = { ...TRAIN_DEFAULTS, steps: 10, batch: 4, seqLen: 64, lr: 4e-3, minLr: 4e-4, seed: 9 };
    const same = resumedOptions(saved, 5, { seed: undefined, steps: undefined });
    expect(same.options).toEqual(saved);
    expect(same.overridden).toEqual([]);
    const r = resumedOptions(saved, 5, { lr: 1e-3, seed: 9, steps: 20 });
    expect(r.options.minLr).toBeCloseTo(1e-4, 12);
    expect(r.options.seed).toBe(9);
    expect(r.overridden.map((x) => x.name)).toEqual(['lr', 'steps']);
    expect(() => resumedOptions(saved, 10, { steps: 10 })).toThrow(/steps 10 is not beyond the checkpoint's step \(10\)/);
  });
});

describe('mixt train --out', () => {
  test('a new run refuses a directory holding a run; --force replaces it', () => {
    const dir = tmp();
    const train = smallRun(dir);
    expect(mixtCli([...train, '--steps', '4', '--out', 'run'], dir).status).toBe(0);
    const r = mixtCli([...train, '--steps', '2', '--out', 'run'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--out run already holds a run \(latest: step 4\); continue it with --resume run, replace it with --force/);
    expect(latestStep(path.join(dir, 'run'))).toBe(4);
    const f = mixtCli([...train, '--steps', '2', '--out', 'run', '--force'], dir);
    expect(f.status).toBe(0);
    expect(f.stderr).toMatch(/--force: removed the run in run \(it was at step 4\)/);
    expect(latestStep(path.join(dir, 'run'))).toBe(2);
    expect(fs.readdirSync(path.join(dir, 'run')).filter((x) => x.startsWith('step-'))).toEqual(['step-000002']);
  });
});

describe('estimates before training', () => {
  test('a model whose parameters alone cannot fit is refused with the number, before any allocation', () => {
    const cfg = presetConfig('tiny', SHAPES_VOCAB, 'mot', { layers: 100000 });
    const before = mixt.memory().cpu?.tensors ?? 0;
    const t0 = performance.now();
    let err: (Error & { code?: string }) | undefined;
    try {
      new Model(cfg, { device: mixt.Device.cpu });
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).toBe('ERR_OOM');
    expect(err?.message).toMatch(/Model: [\d.]+B parameters \(100000 layers of d 96\) need [\d.]+ GiB for their values alone; cpu has [\d.]+ GiB/);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(mixt.memory().cpu?.tensors ?? 0).toBe(before);
  });

  test('the memory estimate bounds the measured peak of a step from above, within 1.5x', async () => {
    const data = shapesCorpus({ docs: 500, seed: 1 });
    for (const [over, batch, seqLen] of [[{}, 4, 128], [{ dModel: 128, heads: 4, kvHeads: 2, ffnHidden: 320, layers: 2 }, 2, 256]] as const) {
      const cfg = presetConfig('tiny', SHAPES_VOCAB, 'mot', over);
      const est = await estimateStep(cfg, { batch, seqLen }, mixt.Device.cpu);
      mixt.resetPeakMemory();
      const base = mixt.memory().cpu?.bytes ?? 0;
      const tr = new Trainer(new Model(cfg, { device: mixt.Device.cpu, seed: 1 }), data, { ...TRAIN_DEFAULTS, steps: 3, batch, seqLen });
      for (let i = 0; i < 3; i++) await tr.trainStep();
      const peak = mixt.memory().cpu!.peakBytes - base;
      tr.dispose();
      tr.model.dispose();
      expect(est.memory.total).toBeGreaterThanOrEqual(peak);
      expect(est.memory.total).toBeLessThan(1.5 * peak);
    }
  });

  test('a long step or run is warned about with the time; the estimate reads in units', async () => {
    const cfg = presetConfig('tiny', SHAPES_VOCAB);
    // a device rate given, as a calibration would measure it: 1 GFLOP/s
    const e = await estimateStep(cfg, { batch: 4, seqLen: 256, steps: 1000 }, mixt.Device.cpu, { deviceFlops: 1e9 });
    expect(e.msPerStep).toBeGreaterThan(1000);
    const w = estimateWarnings(e);
    expect(w.join('\n')).toMatch(/the run will take about [\d.]+ (min|h)/);
    expect(describeEstimate(e)).toMatch(/^about [\d.]+ MiB of [\d.]+ GiB \((host RAM|the container's memory limit)\) and [\d.]+ s per step \([\d.]+ (min|h) in all\)$/);
    // ten times the rate: a tenth of the FLOP time, so no warning
    const fast = await estimateStep(cfg, { batch: 4, seqLen: 256, steps: 100 }, mixt.Device.cpu, { deviceFlops: 1e12 });
    expect(fast.msPerStep!).toBeLessThan(e.msPerStep! / 5);
    expect(estimateWarnings(fast)).toEqual([]);
  });

  test('a step that cannot fit is refused with the numbers, before the model is built', () => {
    const dir = tmp();
    const big = mixtCli(['train', '--batch', '100000', '--device', 'cpu', '--out', 'x'], dir);
    expect(big.status).toBe(1);
    expect(big.stderr).toMatch(/a training step of 100000x256 tokens needs about [\d.]+ GiB \(parameters .*activations [\d.]+ GiB\); (host RAM|the container's memory limit) is [\d.]+ GiB/);
    expect(big.stderr).toMatch(/\[ERR_OOM\]/);
    const cfg = path.join(dir, 'huge.json');
    fs.writeFileSync(cfg, JSON.stringify({ layers: 100000 }));
    const huge = mixtCli(['train', '--config', cfg, '--device', 'cpu', '--out', 'y'], dir);
    expect(huge.status).toBe(1);
    // the model itself cannot fit: refused by its size before anything is allocated
    expect(huge.stderr).toMatch(/Model: [\d.]+B parameters \(100000 layers of d 96\) need [\d.]+ GiB for their values alone.*\[ERR_OOM\]/);
    expect(fs.existsSync(path.join(dir, 'x'))).toBe(false);
  });

  test('--preset small on a CPU warns with the expected time per step and memory before starting', async () => {
    const dir = tmp();
    const child = spawn(process.execPath, [path.join(root, 'bin', 'mixt.js'), 'train', '--preset', 'small', '--device', 'cpu', '--out', 'run'], {
      cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MIXT_SKIP_LOAD_CHECK: '1' },
    });
    let err = '';
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/warning: the small preset/.test(err) || /mixt: .*model,/.test(err)) resolve();
      });
      child.on('exit', () => resolve());
    });
    child.kill('SIGKILL');
    expect(err).toMatch(/warning: the small preset is meant for a GPU; on this CPU about [\d.]+ (GiB|MiB) of [\d.]+ GiB \(.*\) and [\d.]+ (ms|s|min|h) per step/);
    // the warning comes before the first step
    expect(err.indexOf('warning: the small preset')).toBeLessThan(Math.max(err.indexOf('train '), 0) || Infinity);
  }, 120000);
});

describe('terminal output', () => {
  test('colour only on a TTY and never with NO_COLOR; table headers are not red', () => {
    const saved = process.env.NO_COLOR;
    try {
      delete process.env.NO_COLOR;
      expect(useColor({ isTTY: true })).toBe(true);
      expect(useColor({ isTTY: false })).toBe(false);
      expect(useColor({})).toBe(false);
      process.env.NO_COLOR = '1';
      expect(useColor({ isTTY: true })).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
    const t = table(['a', 'b']);
    t.push(['1', '2']);
    expect(t.toString()).not.toMatch(/\x1b\[/); // jest's stdout is not a TTY
    expect(t.toString()).toMatch(/│ a │ b │/);
    expect(t.options.style.head).not.toContain('red');
  });

  test('mixt train writes no escape codes when its output is not a terminal', () => {
    const dir = tmp();
    const r = mixtCli([...smallRun(dir), '--steps', '2', '--out', 'run'], dir, { FORCE_COLOR: '1' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/modality/);
    expect(r.stdout + r.stderr).not.toMatch(/\x1b\[3\dm/);
  });

  test('compare --help shows its defaults; compare shows progress of both runs', () => {
    const help = mixtCli(['compare', '--help'], root);
    expect(help.stdout).toMatch(/--preset <name>.*\(default: "tiny"\)/);
    expect(help.stdout).toMatch(/--steps <n>[\s\S]*default: the preset's; tiny 1200/);
    expect(help.stdout).toMatch(/--out <dir>.*\(default: "runs\/compare"\)/);
    const dir = tmp();
    const r = mixtCli(['compare', '--steps', '3', '--device', 'cpu', '--out', 'cmp'], dir);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^dense .* 3\/3 /m);
    expect(r.stderr).toMatch(/^mot .* 3\/3 /m);
    // a second comparison replaces its own runs (no refusal)
    expect(mixtCli(['compare', '--steps', '2', '--device', 'cpu', '--out', 'cmp'], dir).status).toBe(0);
  });

  test('compare with MoD: the equal-FLOPs MoD model, its FLOPs, step time and CPU time beside MoT\'s, and the share of each modality it routed', () => {
    const dir = tmp();
    const r = mixtCli(['compare', '--blocks', 'mot,mod', '--steps', '5', '--device', 'cpu', '--out', 'cmp'], dir);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^MoD \(5 layers mot,mod, FFN 224, capacity 12\.5%\): 0\.99x the MoT FLOPs per step, step time \d+ ms \([\d.]+x MoT's: -?\d+% saved\), CPU time per step \d+ ms \([\d.]+x MoT's: -?\d+% saved\)$/m);
    expect(r.stdout).toMatch(/^ {2}tokens through its routed blocks \(last 50 steps\): text [\d.]+%, image [\d.]+%, tone [\d.]+%$/m);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'cmp', 'compare.json'), 'utf8'));
    const mod = json.cost.find((c: { model: string }) => c.model === 'mod');
    expect(mod).toMatchObject({ layers: 5, ffnHidden: 224, blocks: 'mot,mod' });
    expect(mod.cpuMsPerStep).toBeGreaterThan(0);
    expect(json.curves.mod.every((s: { cpuMs: number }) => s.cpuMs > 0)).toBe(true);
  });
});
