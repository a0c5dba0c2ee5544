// The bench CLI on the CPU backend (--quick): every suite runs, every row has a time, and the
// PyTorch side says why it was not used.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { attentionLayout } from '../lib/cli/bench/cases';
import { renderTable, significant } from '../lib/cli/bench';
import { timeRuns } from '../lib/cli/bench/timing';
import { Device } from '../lib/core/device';

const root = path.resolve(__dirname, '..');

describe('mixt bench', () => {
  test('--quick --json on the CPU times a case of every suite', () => {
    const out = execFileSync(process.execPath, [path.join(root, 'bin', 'mixt.js'), 'bench', '--quick', '--json', '--device', 'cpu', '--iters', '2', '--warmup', '1'], {
      encoding: 'utf8', timeout: 300000, env: { ...process.env, MIXT_DEVICE: 'cpu' },
    });
    const { header, rows } = JSON.parse(out);
    expect(header.device).toMatch(/^cpu/);
    expect(header.pytorch).toMatch(/not used: no GPU/);
    const suites = new Set(rows.map((r: { suite: string }) => r.suite));
    for (const s of ['gemm', 'grouped-gemm', 'attention', 'norm', 'routing', 'loss', 'adamw', 'block', 'step', 'generate']) expect(suites.has(s)).toBe(true);
    for (const r of rows) {
      expect(r.error).toBeUndefined();
      expect(r.ms).toBeGreaterThan(0);
    }
    expect(rows.find((r: { suite: string }) => r.suite === 'gemm').tflops).toBeGreaterThan(0);
  });

  test('attention FLOPs count visible pairs: causal is half of full; spans add their upper triangle', () => {
    expect(attentionLayout('full', 2, 8).visiblePairs).toBe(128);
    expect(attentionLayout('causal', 2, 8).visiblePairs).toBe(72); // 2 * 8 * 9 / 2
    expect(attentionLayout('spans', 1, 8).visiblePairs).toBe(36 + 6); // span [2, 6): 4 * 3 / 2
    expect(attentionLayout('docs', 1, 16).visiblePairs).toBe(3 + 10 + 3 + 36); // docs of 2, 4, 2, 8
  });

  // What it proves: the run count is cut to the time budget in units of the case's own first run,
  // measured in the same call (so a loaded machine, which slows every run alike, changes the unit,
  // not the verdict), never below 3 and never above the asked iterations. A timeRuns that ignored
  // its budget would time 20 runs; one that cut by a fixed guess would disagree with firstMs.
  test('a slow case gets fewer timed runs, to fit its time budget in units of its first run, and never fewer than 3', async () => {
    const cpu = Device.cpu;
    // A Node timer may fire a millisecond or two early against performance.now() (libuv measures
    // from its cached loop time), so the sleep re-arms until 40 ms of real time have passed.
    const sleep = () => new Promise<void>((r) => {
      const until = performance.now() + 40;
      const wait = () => { const left = until - performance.now(); if (left <= 0) r(); else setTimeout(wait, Math.ceil(left)); };
      wait();
    });
    let calls = 0;
    const t = await timeRuns(cpu, () => { calls++; return sleep(); }, 5, 20, 400);
    // The CPU queue's marks are stamped by its worker thread, which may pick the first one up a few
    // ms late on a loaded machine: the span measured is the sleep less that delay.
    expect(t.firstMs).toBeGreaterThanOrEqual(25);
    expect(t.runs).toBe(Math.max(3, Math.min(20, Math.floor(400 / t.firstMs!))));
    expect(t.runs).toBeLessThanOrEqual(16); // 400 ms holds at most sixteen runs of >= 25 ms
    expect(calls).toBeLessThan(25);
    expect(t.medianMs).toBeGreaterThan(30);
    expect((await timeRuns(cpu, sleep, 1, 20, 1)).runs).toBe(3);
    expect((await timeRuns(cpu, () => undefined, 2, 20, 1000)).runs).toBe(20);
  });

  test('the CPU table shows only columns with values, in significant digits, and no PyTorch note', () => {
    const rows = [
      { suite: 'norm', name: 'rms', shape: '4096x512', ms: 0.812345, gbps: 0.4567 },
      { suite: 'gemm', name: 'matmul', shape: '512^3', ms: 12.3456, tflops: 0.021734 },
      { suite: 'adamw', name: 'step', shape: '1M', ms: 3.2, gbps: 7.04912 },
    ];
    const out = renderTable({ device: 'cpu' }, rows);
    const head = out.split('\n').find((l) => l.includes('suite'))!;
    expect(head.split('│').map((c) => c.trim()).filter(Boolean)).toEqual(['suite', 'case', 'shape', 'ms', 'TFLOP/s', 'GB/s']);
    expect(out).not.toMatch(/torch|peak/);
    expect(out).toMatch(/│ 0\.457 +│/);
    expect(out).toMatch(/│ 7\.05 +│/);
    expect(out).toMatch(/│ 0\.0217 +│/);
    expect(out).toMatch(/│ 12\.3 +│/);
    expect(significant(1234.5)).toBe('1230');
    expect(significant(0.000123456)).toBe('0.000123');
    expect(significant(99.96, 3)).toBe('100');
    // a GPU row brings its columns back
    expect(renderTable({}, [{ ...rows[1], peakPercent: 3.1, torchMs: 20, ratio: 1.62 }])).toMatch(/% peak[\s\S]*vs torch[\s\S]*above 1x, mixt is faster/);
  });

  test('an unknown suite is a clear error', () => {
    expect(() => execFileSync(process.execPath, [path.join(root, 'bin', 'mixt.js'), 'bench', '--suite', 'nope', '--device', 'cpu'], { encoding: 'utf8', stdio: 'pipe' })).toThrow(/unknown suite "nope"/);
  });
});
