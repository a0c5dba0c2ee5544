// `mixt bench`: times every kernel, layer and training step, side by side with PyTorch on the same
// GPU in the same run (bench/reference/torch_bench.py as a child process, when `import torch`
// works and a GPU is present). --check feeds both sides the same inputs and reports the max
// relative error. Without a GPU it times the CPU backend and says so.
import { spawnSync } from 'child_process';
import { Command } from 'commander';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cudaStatus } from '../../core/device';
import { packageRoot } from '../../core/native';
import { buildInfo } from '../../core/runtime';
import { Tensor } from '../../core/tensor';
import { cast } from '../../ops';
import { encodeSafetensors, decodeSafetensors, StoredTensor } from '../../model/safetensors';
import { intOption, pickDevice, table } from '../common';
import { BenchCase, SUITES, benchCases } from './cases';
import { timeRuns } from './timing';

export interface BenchOptions {
  suite?: string;
  filter?: string;
  quick?: boolean;
  json?: boolean;
  check?: boolean;
  torch?: boolean; // false: skip the PyTorch side
  device?: string;
  warmup?: number;
  iters?: number;
  caseSeconds?: number; // time budget of one case: slow cases get fewer runs
}

export interface BenchRow {
  suite: string;
  name: string;
  shape: string;
  ms: number;
  tflops?: number;
  gbps?: number;
  peakPercent?: number;
  torchMs?: number;
  torchBest?: string;
  torchVariants?: Record<string, number>;
  ratio?: number; // torch ms / mixt ms: > 1 means mixt is faster
  checkError?: number;
  error?: string;
}

interface Peak {
  tflops: number;
  gbps: number;
}

// Dense bf16 tensor-core peak and memory bandwidth of known GPUs.
function peakOf(name: string): Peak | undefined {
  const n = name.toLowerCase();
  if (n.includes('h200')) return { tflops: 989, gbps: 4800 };
  if (n.includes('h100')) return n.includes('pcie') ? { tflops: 756, gbps: 2000 } : { tflops: 989, gbps: 3350 };
  if (n.includes('a100')) return { tflops: 312, gbps: 2039 };
  return undefined;
}

function gitHead(): string {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

interface TorchResult {
  ms?: number;
  best?: string;
  variants?: Record<string, number>;
  error?: string;
  outputs?: string; // safetensors file with the outputs of the --check run
}

function torchAvailable(): { ok: boolean; version?: string; why?: string } {
  const r = spawnSync('python3', ['-c', 'import torch, json; print(json.dumps([torch.__version__, torch.cuda.is_available()]))'], { encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) return { ok: false, why: 'python3 cannot import torch' };
  const [version, cuda] = JSON.parse(r.stdout.trim().split('\n').pop()!);
  if (!cuda) return { ok: false, version, why: 'PyTorch sees no CUDA device' };
  return { ok: true, version };
}

async function hostStored(t: Tensor): Promise<StoredTensor> {
  const f = t.dtype === 'bf16' ? cast(t, 'f32') : t;
  const a = await f.toArray();
  if (f !== t) f.dispose();
  return { dtype: f.dtype, shape: [...t.shape], data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) };
}

function runTorch(cases: { id: number; c: BenchCase; inputs?: string }[], o: BenchOptions, dir: string): Map<number, TorchResult> {
  const spec = cases.map(({ id, c, inputs }) => ({ id, suite: c.suite, name: c.name, op: c.torch!.op, params: c.torch!.params, inputs, outputs: inputs ? path.join(dir, `out-${id}.safetensors`) : undefined }));
  const script = path.join(packageRoot, 'bench', 'reference', 'torch_bench.py');
  const r = spawnSync('python3', [script, '--warmup', String(o.warmup ?? (o.quick ? 2 : 5)), '--iters', String(o.iters ?? (o.quick ? 5 : 20))], {
    input: JSON.stringify(spec), encoding: 'utf8', maxBuffer: 64 * 2 ** 20, timeout: 3600 * 1000, env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  const out = new Map<number, TorchResult>();
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || 'failed').trim().split('\n').slice(-2).join(' ');
    for (const { id } of cases) out.set(id, { error: `torch_bench.py: ${why}` });
    return out;
  }
  const parsed = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, TorchResult>;
  for (const [id, v] of Object.entries(parsed)) out.set(Number(id), v);
  return out;
}

function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0, worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / (scale || 1);
}

function asFloats(s: StoredTensor): Float64Array {
  const buf = s.data.slice().buffer;
  return s.dtype === 'f64' ? new Float64Array(buf) : Float64Array.from(new Float32Array(buf));
}

export async function runBench(o: BenchOptions): Promise<{ header: Record<string, unknown>; rows: BenchRow[] }> {
  const choice = pickDevice(o.device, o.json);
  const device = choice.device;
  const quick = !!o.quick;
  const st = cudaStatus();
  const devName = device.isCuda ? st.devices[device.index].name : 'cpu';
  const torch = o.torch === false || !device.isCuda ? { ok: false, why: device.isCuda ? 'disabled (--no-torch)' : 'no GPU: the CPU backend is timed, without PyTorch' } : torchAvailable();
  const header = {
    device: device.isCuda ? `${device} ${devName}` : `cpu (${os.cpus()[0]?.model.trim()}, ${buildInfo().cpuThreads} threads)`,
    driver: st.driverVersion ? `${Math.floor(st.driverVersion / 1000)}.${(st.driverVersion % 1000) / 10}` : 'none',
    cuda: st.runtimeVersion ? `${Math.floor(st.runtimeVersion / 1000)}.${(st.runtimeVersion % 1000) / 10}` : 'none',
    pytorch: torch.ok ? (torch as { version: string }).version : `not used: ${torch.why}`,
    commit: gitHead(),
    date: new Date().toISOString().slice(0, 10),
    mode: quick ? 'quick' : 'full',
  };
  const suites = o.suite ? o.suite.split(',').map((s) => s.trim()) : [...SUITES];
  for (const s of suites) if (!(SUITES as readonly string[]).includes(s)) throw new RangeError(`--suite: unknown suite "${s}" (known: ${SUITES.join(', ')})`);
  const filter = o.filter ? new RegExp(o.filter, 'i') : null;
  const cases = benchCases({ device, quick }).filter((c) => suites.includes(c.suite) && (!filter || filter.test(`${c.suite} ${c.name} ${c.shape}`)));
  const ctx = { device, dtype: device.isCuda ? ('bf16' as const) : ('f32' as const), quick, l2Bytes: device.isCuda ? st.devices[device.index].l2Bytes : 32 * 2 ** 20, seed: 7 };
  const peak = device.isCuda ? peakOf(devName) : undefined;
  const warmup = o.warmup ?? (quick ? 2 : 5), iters = o.iters ?? (quick ? 5 : 20);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-bench-'));
  const rows: BenchRow[] = [];
  const outputsById = new Map<number, Record<string, Float64Array>>();
  const forTorch: { id: number; c: BenchCase; inputs?: string }[] = [];
  for (const [id, c] of cases.entries()) {
    const row: BenchRow = { suite: c.suite, name: c.name, shape: c.shape, ms: NaN };
    rows.push(row);
    if (!o.json) process.stderr.write(`bench: ${c.suite} ${c.name} ${c.shape}\n`);
    let inst;
    try {
      inst = c.make(ctx);
      const runner = inst;
      const t = await timeRuns(device, (i) => runner.run(i), warmup, iters, (o.caseSeconds ?? 3) * 1000);
      row.ms = t.medianMs;
      if (c.flops) row.tflops = c.flops / (t.medianMs / 1000) / 1e12;
      if (c.bytes) row.gbps = c.bytes / (t.medianMs / 1000) / 1e9;
      if (peak) row.peakPercent = c.flops ? (100 * row.tflops!) / peak.tflops : c.bytes ? (100 * row.gbps!) / peak.gbps : undefined;
      let inputs: string | undefined;
      if (o.check && torch.ok && inst.inputs && inst.outputs) {
        const named = new Map<string, StoredTensor>();
        for (const [k, v] of Object.entries(inst.inputs)) named.set(k, await hostStored(v));
        inputs = path.join(dir, `in-${id}.safetensors`);
        fs.writeFileSync(inputs, encodeSafetensors(named));
        const outs: Record<string, Float64Array> = {};
        for (const [k, v] of Object.entries(inst.outputs())) {
          outs[k] = asFloats(await hostStored(v));
          v.dispose();
        }
        outputsById.set(id, outs);
      }
      if (c.torch && torch.ok) forTorch.push({ id, c, inputs });
    } catch (e) {
      row.error = (e as Error).message.split('\n')[0];
    } finally {
      inst?.dispose();
    }
  }
  if (forTorch.length) {
    if (!o.json) process.stderr.write(`bench: running the PyTorch reference for ${forTorch.length} cases\n`);
    const res = runTorch(forTorch, o, dir);
    for (const { id } of forTorch) {
      const r = res.get(id), row = rows[id];
      if (!r) continue;
      if (r.error) row.error = row.error ?? `torch: ${r.error}`;
      if (r.ms !== undefined) {
        row.torchMs = r.ms;
        row.torchBest = r.best;
        row.torchVariants = r.variants;
        row.ratio = r.ms / row.ms;
      }
      const mine = outputsById.get(id);
      if (mine && r.outputs && fs.existsSync(r.outputs)) {
        const theirs = decodeSafetensors(fs.readFileSync(r.outputs)).tensors;
        let worst = 0;
        for (const [k, v] of Object.entries(mine)) {
          const t = theirs.get(k);
          if (t) worst = Math.max(worst, maxRelError(v, asFloats(t)));
        }
        row.checkError = worst;
      }
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return { header, rows };
}

// n significant digits without an exponent: 0.00123, 1.23, 123, 12300 (the unit carries the scale).
export function significant(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  const r = Number(x.toPrecision(digits)); // round first: 99.96 becomes 100, not 100.0
  if (r === 0) return '0';
  const places = Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(r))));
  return r.toFixed(Math.min(places, 20));
}

// The columns of the table: only those with a value in some row (the CPU has no peak and no PyTorch).
const COLUMNS: { head: string; cell: (r: BenchRow) => string | undefined }[] = [
  { head: 'suite', cell: (r) => r.suite },
  { head: 'case', cell: (r) => r.name },
  { head: 'shape', cell: (r) => r.shape },
  { head: 'ms', cell: (r) => (r.error && Number.isNaN(r.ms) ? 'error' : significant(r.ms)) },
  { head: 'TFLOP/s', cell: (r) => (r.tflops !== undefined ? significant(r.tflops) : undefined) },
  { head: 'GB/s', cell: (r) => (r.gbps !== undefined ? significant(r.gbps) : undefined) },
  { head: '% peak', cell: (r) => (r.peakPercent !== undefined ? significant(r.peakPercent, 2) : undefined) },
  { head: 'torch ms', cell: (r) => (r.torchMs !== undefined ? significant(r.torchMs) : undefined) },
  { head: 'torch best', cell: (r) => r.torchBest },
  { head: 'vs torch', cell: (r) => (r.ratio !== undefined ? `${significant(r.ratio)}x` : undefined) },
  { head: 'check err', cell: (r) => (r.checkError !== undefined ? r.checkError.toExponential(1) : undefined) },
];

export function renderTable(header: Record<string, unknown>, rows: BenchRow[]): string {
  const lines = Object.entries(header).map(([k, v]) => `${k}: ${v}`);
  const cols = COLUMNS.filter((c) => rows.some((r) => c.cell(r) !== undefined));
  const t = table(cols.map((c) => c.head));
  for (const r of rows) t.push(cols.map((c) => c.cell(r) ?? ''));
  const errors = rows.filter((r) => r.error).map((r) => `error in ${r.suite} ${r.name}: ${r.error}`);
  const torchNote = rows.some((r) => r.ratio !== undefined) ? ["'vs torch' is PyTorch's time over mixt's: above 1x, mixt is faster."] : [];
  return [...lines, t.toString(), ...errors, ...torchNote].join('\n');
}

export function benchCommand(): Command {
  return new Command('bench')
    .description('time every kernel, layer and training step; side by side with PyTorch on the same GPU')
    .option('--suite <names>', `comma-separated: ${SUITES.join(', ')}`)
    .option('--filter <regex>', 'only cases whose suite, name or shape match')
    .option('--quick', 'small shapes and few runs (the CPU default in CI)')
    .option('--check', 'feed PyTorch the same inputs and report the max relative error')
    .option('--no-torch', 'skip the PyTorch side')
    .option('--json', 'one JSON document on stdout')
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N'")
    .option('--warmup <n>', 'warm-up runs per case', intOption('--warmup', 0))
    .option('--iters <n>', 'timed runs per case', intOption('--iters'))
    .option('--case-seconds <n>', 'time budget per case: a slow case gets fewer runs (at least 3)', intOption('--case-seconds'))
    .action(async (o: BenchOptions) => {
      const { header, rows } = await runBench(o);
      if (o.json) console.log(JSON.stringify({ header, rows }, null, 1));
      else console.log(renderTable(header, rows));
    });
}
