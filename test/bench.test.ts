// The bench CLI on the CPU backend (--quick): every suite runs, every row has a time, and the
// PyTorch side says why it was not used.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { attentionLayout } from '../lib/cli/bench/cases';
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

  test('a slow case gets fewer timed runs, to fit its time budget, and never fewer than 3', async () => {
    const cpu = Device.cpu;
    const sleep = () => new Promise<void>((r) => setTimeout(r, 40));
    let calls = 0;
    const t = await timeRuns(cpu, () => { calls++; return sleep(); }, 5, 20, 400);
    expect(t.runs).toBeGreaterThanOrEqual(7); // 400 ms / ~40 ms per run, less timer jitter
    expect(t.runs).toBeLessThanOrEqual(10);
    expect(calls).toBeLessThan(25);
    expect(t.medianMs).toBeGreaterThan(30);
    expect((await timeRuns(cpu, sleep, 1, 20, 1)).runs).toBe(3);
    expect((await timeRuns(cpu, () => undefined, 2, 20, 1000)).runs).toBe(20);
  });

  test('an unknown suite is a clear error', () => {
    expect(() => execFileSync(process.execPath, [path.join(root, 'bin', 'mixt.js'), 'bench', '--suite', 'nope', '--device', 'cpu'], { encoding: 'utf8', stdio: 'pipe' })).toThrow(/unknown suite "nope"/);
  });
});
