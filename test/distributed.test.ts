// Data-parallel training: the row split of a global batch, the gradient buckets, the communicator's
// errors where no usable MPI/NCCL exists, and (where mpirun is installed: CI installs Open MPI) the
// real thing: 2 CPU ranks follow the loss curve of one process at the same global batch, rank 0's
// checkpoints resume at another world size, and a rank that dies or stops makes the others fail
// with a clear error instead of hanging.
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Communicator } from '../lib/core/comm';
import { Device } from '../lib/core/device';
import { native } from '../lib/core/native';
import { Tensor } from '../lib/core/tensor';
import { zeros } from '../lib/ops';
import { Parameter } from '../lib/nn/parameter';
import { shapesCorpus } from '../lib/train/data/dataset';
import { HostBatch, PackedLoader, shardBatch } from '../lib/train/data/loader';
import { transfusionCorpus } from '../lib/train/data/transfusion';
import { DataParallel, GradientReducer } from '../lib/train/distributed';

const root = path.resolve(__dirname, '..');
const cpu = Device.of(-1);

describe('shardBatch', () => {
  const join = (parts: HostBatch[], key: 'tokens' | 'targets' | 'modality' | 'positions' | 'targetModality') =>
    Int32Array.from(parts.flatMap((p) => Array.from(p[key])));

  test.each([2, 3, 6])('the %i ranks\' rows, in rank order, are the global batch', (size) => {
    const loader = new PackedLoader(shapesCorpus({ docs: 300, seed: 5 }), 48, 6, 7);
    loader.next(); // not the first batch: documents cut across rows
    const hb = loader.next();
    const parts = Array.from({ length: size }, (_, r) => shardBatch(hb, r, size));
    for (const key of ['tokens', 'targets', 'modality', 'positions', 'targetModality'] as const) expect(join(parts, key)).toEqual(hb[key]);
    for (const p of parts) {
      expect(p.rows).toBe(6 / size);
      expect(p.docIds[0]).toBe(0);
      for (let i = 1; i < p.docIds.length; i++) expect(p.docIds[i]).toBeGreaterThanOrEqual(p.docIds[i - 1]);
    }
    // the same document boundaries: a token shares its predecessor's document in the shard iff globally
    const same = (ids: Int32Array) => Array.from(ids.subarray(1), (d, i) => d === ids[i]);
    const cut = new Set(Array.from({ length: size - 1 }, (_, r) => ((r + 1) * hb.tokens.length) / size - 1));
    expect(parts.flatMap((p) => [...same(p.docIds), null]).slice(0, -1).filter((_, i) => !cut.has(i))).toEqual(same(hb.docIds).filter((_, i) => !cut.has(i)));
    const counts = parts.reduce((acc, p) => acc.map((c, m) => c + p.targetCounts[m]), new Array(hb.targetCounts.length).fill(0));
    expect(counts).toEqual(hb.targetCounts);
  });

  test("Transfusion pictures go with their rows, positions re-based to the shard", () => {
    const ds = transfusionCorpus({ docs: 40, seed: 3, split: 'train' });
    const hb = new PackedLoader(ds, 128, 4, 2).next();
    expect(hb.images!.positions.length).toBeGreaterThan(0);
    const pd = ds.patchDim!;
    const parts = [0, 1].map((r) => shardBatch(hb, r, 2));
    expect(parts[0].images!.positions.length + parts[1].images!.positions.length).toBe(hb.images!.positions.length);
    for (const [r, p] of parts.entries()) {
      p.images!.positions.forEach((pos, j) => {
        const g = hb.images!.positions.indexOf(pos + r * 2 * 128);
        expect(g).toBeGreaterThanOrEqual(0);
        expect(p.images!.timesteps[j]).toBe(hb.images!.timesteps[g]);
        expect(p.images!.x0.subarray(j * pd, (j + 1) * pd)).toEqual(hb.images!.x0.subarray(g * pd, (g + 1) * pd));
        expect(p.spanIds![pos]).toBeGreaterThanOrEqual(0);
      });
    }
  });

  test('a world size that does not divide the rows, or a rank outside it, is refused', () => {
    const hb = new PackedLoader(shapesCorpus({ docs: 50, seed: 1 }), 32, 4, 1).next();
    expect(() => shardBatch(hb, 0, 3)).toThrow(/divisor of the batch's 4 rows, received 3/);
    expect(() => shardBatch(hb, 2, 2)).toThrow(/rank" expected an integer in \[0, 2\), received 2/);
    expect(shardBatch(hb, 0, 1)).toBe(hb);
  });
});

describe('GradientReducer', () => {
  // A communicator that records the buckets it is handed.
  function recorder(bucketBytes: number): { dp: DataParallel; calls: (Tensor[] | 'wait')[] } {
    const calls: (Tensor[] | 'wait')[] = [];
    const comm = { size: 2, rank: 0, allReduceSum_: (ts: Tensor[]) => calls.push([...ts]), wait: () => calls.push('wait') } as unknown as Communicator;
    return { dp: { comm, bucketBytes, overlap: true }, calls };
  }
  const param = (name: string, n: number) => new Parameter(name, zeros([n], { dtype: 'f32', device: cpu }), 'matrix');

  test('every gradient is reduced exactly once, in buckets of about bucketBytes, then waited for', () => {
    const ps = [param('a', 10), param('b', 30), param('c', 5), param('d', 40), param('e', 1)];
    ps[1].grad = zeros([30], { dtype: 'f32', device: cpu });
    const { dp, calls } = recorder(100); // 25 floats
    const r = new GradientReducer(dp, ps);
    r.ready([ps[3]]); // a late layer first, as the backward goes
    expect(calls).toHaveLength(1); // 160 bytes >= 100: handed over before the backward goes on
    r.ready([ps[1], ps[3]]); // a second report of d is ignored
    r.finish();
    expect(ps.every((p) => p.grad !== null)).toBe(true); // a gradient no backward reached is reduced as zeros
    const names = calls.map((c) => (c === 'wait' ? 'wait' : c.map((t) => ps.find((p) => p.grad === t)!.name).join('')));
    expect(names).toEqual(['d', 'b', 'ace', 'wait']); // b: 120 bytes; a, c, e: the rest, in parameter order
    for (const p of ps) p.dispose();
  });
});

describe('Communicator where no usable library exists', () => {
  test('a missing MPI library is named, with why it is unusable', async () => {
    await expect(Communicator.init(cpu, { timeoutSeconds: 30, mpiLibrary: '/nonexistent/libmpi.so.40' })).rejects.toMatchObject({
      code: 'ERR_COMM_UNAVAILABLE',
      message: expect.stringMatching(/MPI is unusable: could not load it \(\/nonexistent\/libmpi\.so\.40: .*No such file/),
    });
  });

  test("a library that is not Open MPI (MPICH's ABI, or none) is refused by name", async () => {
    const e = await Communicator.init(cpu, { timeoutSeconds: 30, mpiLibrary: 'libc.so.6' }).catch((x) => x);
    expect(e.code).toBe('ERR_COMM_UNAVAILABLE');
    expect(e.message).toContain('libc.so.6 exports no ompi_mpi_comm_world: it is not Open MPI');
  });

  test('NCCL in an addon built without CUDA says so; a bad timeout is a TypeError', async () => {
    if (native().buildInfo().cuda) return console.log('skipped: this addon has CUDA (the NCCL case needs a CPU-only build)');
    expect(() => native().commNcclUniqueId()).toThrow(/NCCL is unusable: this addon was built without CUDA/);
    await expect(Communicator.init(cpu, { timeoutSeconds: 0 })).rejects.toThrow(TypeError);
  });
});

// ---- the real thing, under mpirun ----

const mpirun = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
const haveMpirun = mpirun.status === 0;
if (!haveMpirun) console.log('distributed tests under mpirun skipped: mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)');
const describeMpi = haveMpirun ? describe : describe.skip;

const env = {
  ...process.env, MIXT_DEVICE: 'cpu', MIXT_SKIP_LOAD_CHECK: '1',
  // root in containers; 2 ranks on a machine of fewer cores
  OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1',
  // containers often forbid the cross-process memory reads of shared-memory single copy
  OMPI_MCA_btl_vader_single_copy_mechanism: 'none',
  // a waiting rank yields its core instead of spinning (2 ranks may share 2 cores with their compute)
  OMPI_MCA_mpi_yield_when_idle: '1',
};
const TRAIN = ['train', '--device', 'cpu', '--batch', '4', '--seq', '96', '--json', '--force'];

interface Step {
  step: number;
  loss: number;
  gradNorm: number;
  tokens: number;
}
const steps = (stdout: string): Step[] => stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((r) => r.type === 'step');

function run(ranks: number, args: string[], extra: NodeJS.ProcessEnv = {}) {
  const cli = [path.join(root, 'bin', 'mixt.js'), ...args];
  const r = ranks === 0
    ? spawnSync(process.execPath, cli, { encoding: 'utf8', env: { ...env, ...extra }, timeout: 240000 })
    : spawnSync('mpirun', ['-n', String(ranks), process.execPath, ...cli, '--distributed'], { encoding: 'utf8', env: { ...env, ...extra }, timeout: 240000 });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return { steps: steps(r.stdout), stderr: r.stderr };
}

function expectSameCurve(a: Step[], b: Step[]): void {
  expect(b.map((s) => s.step)).toEqual(a.map((s) => s.step));
  a.forEach((s, i) => {
    expect(Math.abs(b[i].loss - s.loss)).toBeLessThan(1e-5 * Math.max(1, s.loss));
    expect(Math.abs(b[i].gradNorm - s.gradNorm)).toBeLessThan(1e-4 * Math.max(1, s.gradNorm));
    expect(b[i].tokens).toBe(s.tokens);
  });
}

describeMpi('mixt train --distributed on 2 CPU ranks (Open MPI)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-dist-'));
  let single: Step[] = [];

  test('the loss curve equals one process at the same global batch; only rank 0 reports and saves', () => {
    single = run(0, [...TRAIN, '--steps', '4', '--out', path.join(dir, 'one')]).steps;
    const two = run(2, [...TRAIN, '--steps', '4', '--out', path.join(dir, 'two')]);
    expect(two.stderr).toMatch(/rank 0 of 2, MPI \(libmpi\.so[.0-9]*\) on cpu/);
    expect(two.stderr).not.toMatch(/rank 1 of 2/); // rank 1 is quiet
    expect(single).toHaveLength(4);
    expect(new Set(single.map((s) => s.loss)).size).toBe(4); // the loss moves: a real curve
    expectSameCurve(single, two.steps);
    expect(fs.readdirSync(path.join(dir, 'two')).filter((f) => f.startsWith('step-'))).toHaveLength(1);
  }, 300000);

  test("rank 0's checkpoint resumes at another world size and continues the same curve", () => {
    expect(single).toHaveLength(4);
    run(2, [...TRAIN, '--steps', '2', '--out', path.join(dir, 'half')]);
    const rest = run(0, ['train', '--resume', path.join(dir, 'half'), '--steps', '4', '--json']).steps;
    expectSameCurve(single.slice(2), rest);
    run(0, [...TRAIN, '--steps', '2', '--out', path.join(dir, 'half1')]);
    const rest2 = run(2, ['train', '--resume', path.join(dir, 'half1'), '--steps', '4', '--json', '--device', 'cpu']).steps;
    expectSameCurve(single.slice(2), rest2);
  }, 300000);

  // Starts a long 2-rank run, waits for 2 steps, then does `what` to rank 1.
  async function hurtRankOne(signal: 'SIGKILL' | 'SIGSTOP', timeoutS: number): Promise<{ code: number | null; stderr: string; seconds: number }> {
    const p: ChildProcess = spawn('mpirun', ['-n', '2', process.execPath, path.join(root, 'bin', 'mixt.js'), ...TRAIN, '--steps', '500', '--out', path.join(dir, signal), '--distributed'], {
      env: { ...env, MIXT_COMM_TIMEOUT: String(timeoutS) },
    });
    let stdout = '', stderr = '';
    p.stdout!.on('data', (d) => (stdout += d));
    p.stderr!.on('data', (d) => (stderr += d));
    let exited = false;
    const ended = new Promise<number | null>((res) => p.on('exit', (c) => ((exited = true), res(c))));
    for (let i = 0; i < 1200 && steps(stdout).length < 2 && !exited; i++) await new Promise((r) => setTimeout(r, 100));
    if (steps(stdout).length < 2) throw new Error(`the run ended or stalled before 2 steps: ${stderr}`);
    const rankOne = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).find((pid) => {
      try {
        const e = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
        return e.includes('OMPI_COMM_WORLD_RANK=1') && e.includes(`MIXT_COMM_TIMEOUT=${timeoutS}`) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(signal);
      } catch {
        return false;
      }
    });
    expect(rankOne).toBeDefined();
    const t0 = Date.now();
    process.kill(Number(rankOne), signal);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([ended, new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), (timeoutS + 60) * 1000)))]);
    clearTimeout(timer);
    try {
      process.kill(Number(rankOne), 'SIGKILL'); // a stopped rank is ours to end
    } catch {
      // gone already
    }
    if (code === 'hung') p.kill('SIGKILL');
    expect(code).not.toBe('hung');
    return { code: code as number | null, stderr, seconds: (Date.now() - t0) / 1000 };
  }

  test('a killed rank ends the job with an error naming it, well within the timeout', async () => {
    const r = await hurtRankOne('SIGKILL', 30);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/rank 1 .*(signal 9|Killed)|ERR_COMM|exited on signal/is);
    expect(r.seconds).toBeLessThan(30);
  }, 300000);

  test('a stopped rank makes rank 0 fail with ERR_COMM_TIMEOUT after the timeout, not hang', async () => {
    const r = await hurtRankOne('SIGSTOP', 20); // long enough for rank 0's start-up work, which rank 1 waits for
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/on rank 0 of 2 did not complete within 20 s: a peer process died or stopped.*\[ERR_COMM_TIMEOUT\]/);
    expect(r.seconds).toBeGreaterThanOrEqual(19);
  }, 300000);
});
