// Lifecycle: terminating busy workers, exiting with queued work, memory budgets. Each case runs in a
// child process, so an abort or a hang fails the test instead of killing the test runner.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as mixt from '../lib';

const root = path.resolve(__dirname, '..');
const fixtures = path.join(__dirname, 'fixtures');
const env = { ...process.env, MIXT_SKIP_LOAD_CHECK: '1' };

function node(args: string[], timeoutMs: number, extraEnv: Record<string, string> = {}) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...env, ...extraEnv } });
  return { ...r, ms: Date.now() - t0 };
}

describe('teardown', () => {
  test('terminating busy workers hundreds of times never kills the main process', () => {
    const rounds = Number(process.env.MIXT_TERMINATE_ROUNDS ?? 200);
    const r = node([path.join(fixtures, 'terminate-rounds.js'), String(rounds)], 280000);
    expect(r.signal).toBeNull();
    expect(r.stderr).not.toMatch(/terminate called|Napi::Error|FATAL/);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`alive after ${rounds} terminations`);
  }, 300000);
});

describe('exit', () => {
  test('a script that ends with minutes of unread work queued ends at once', () => {
    const r = node([path.join(fixtures, 'exit-with-queued-work.js')], 60000);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('script done');
    expect(r.ms).toBeLessThan(20000); // 400 queued 1024^3 matmuls: minutes of work if it were run
  }, 70000);

  test('process.exit() with a read waiting behind queued work exits promptly', () => {
    const script = `
      const mixt = require(${JSON.stringify(root)} + '/dist');
      const a = mixt.randn([1024, 1024]);
      let b = a;
      for (let i = 0; i < 400; i++) b = mixt.matmul(a, b);
      b.toArray().then(() => console.log('read finished'));
      setTimeout(() => { console.log('exiting'); process.exit(0); }, 200);`;
    const r = node(['-e', script], 60000);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('exiting');
    expect(r.stdout).not.toContain('read finished');
    expect(r.ms).toBeLessThan(20000);
  }, 70000);

  test('the CLI exits promptly after an error (eval of a checkpoint whose config is far too large)', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-exit-'));
    const cfg = path.join(out, 'config.json');
    fs.writeFileSync(cfg, JSON.stringify({ dModel: 16, layers: 1, heads: 2, kvHeads: 1, ffnHidden: 24 }));
    const ck = path.join(out, 'run');
    const t = node([path.join(root, 'bin', 'mixt.js'), 'train', '--config', cfg, '--steps', '1', '--batch', '1', '--seq', '32', '--out', ck, '--device', 'cpu', '--json'], 120000);
    expect(t.status).toBe(0);
    const state = path.join(ck, fs.readFileSync(path.join(ck, 'latest'), 'utf8').trim(), 'state.json');
    const s = JSON.parse(fs.readFileSync(state, 'utf8'));
    Object.assign(s.config, { dModel: 1e7, headDim: 5e6, ffnHidden: 64 }); // gigabytes of embedding init queued
    fs.writeFileSync(state, JSON.stringify(s));
    const r = node([path.join(root, 'bin', 'mixt.js'), 'eval', '--checkpoint', ck, '--device', 'cpu'], 120000, { MIXT_HOST_MEMORY_LIMIT: '16G' });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[ERR_/);
    expect(r.ms).toBeLessThan(30000); // it used to run the queued initialisation for minutes
  }, 300000);
});

describe('memory budget', () => {
  afterEach(() => mixt.setMemoryLimit(mixt.memoryLimit().limit)); // keep the process default

  test('empty() past the host budget is ERR_OOM before anything is reserved', () => {
    const before = mixt.memoryLimit();
    expect(before.limit).toBeGreaterThan(0); // a default exists
    const elems = Math.ceil(before.limit / 4) + 1024;
    expect(() => mixt.empty([elems])).toThrow(expect.objectContaining({ code: 'ERR_OOM' }));
    expect(mixt.memoryLimit().used).toBe(before.used);
  });

  test('setMemoryLimit bounds allocations, counts what lives and gives back what is freed', () => {
    const { limit } = mixt.memoryLimit();
    try {
      const used0 = mixt.memoryLimit().used;
      mixt.setMemoryLimit(used0 + 8 * 2 ** 20);
      const a = mixt.zeros([2 ** 20]); // 4 MiB
      expect(mixt.memoryLimit().used).toBe(used0 + 4 * 2 ** 20);
      expect(() => mixt.zeros([2 ** 20 + 1])).toThrow(/out of memory on cpu.*MIXT_HOST_MEMORY_LIMIT/);
      a.dispose();
      expect(mixt.memoryLimit().used).toBe(used0);
      mixt.zeros([2 ** 21 - 16]).dispose(); // fits again once a is freed
      expect(() => mixt.setMemoryLimit(-1)).toThrow(RangeError);
    } finally {
      mixt.setMemoryLimit(limit);
    }
  });

  test('MIXT_HOST_MEMORY_LIMIT sets the budget; allocation failures are ERR_OOM, never an abort', () => {
    const script = `
      const mixt = require(${JSON.stringify(root)} + '/dist');
      const out = [mixt.memoryLimit().limit];
      try { mixt.randn([64, 1024, 1024]); } catch (e) { out.push(e.code); }
      const t = mixt.zeros([1024]);
      mixt.sum(t).toArray().then((v) => { out.push(v[0]); console.log(JSON.stringify(out)); });`;
    const r = node(['-e', script], 60000, { MIXT_HOST_MEMORY_LIMIT: '64M' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual([64 * 2 ** 20, 'ERR_OOM', 0]);
  });
});
