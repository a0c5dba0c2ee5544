// The package works from its prebuilt binary alone: pack it, install the tarball into an empty
// project with --ignore-scripts and no compiler on PATH, require it and run ops on the CPU.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600000 });
}

// The README's library examples (the fenced block after each `<!-- example: cjs|esm -->`).
function readmeExamples(): { cjs: string; esm: string } {
  const text = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const block = (kind: string) => {
    const m = new RegExp(`<!-- example: ${kind} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(text);
    if (!m) throw new Error(`README.md has no ${kind} example`);
    return m[1];
  };
  return { cjs: block('cjs'), esm: block('esm') };
}

// Runs an example after loading mixt, measuring the event-loop delay while it runs against the same
// process's idle baseline, the loop's utilization (the share of the run it spent in JavaScript:
// a machine's load does not raise it, an op that blocked the loop would hold it near 1; see
// test/loop_probe.test.ts), and the JS thread's longest run between timer ticks in CPU time
// (bench/loop_busy.js, which needs nothing of mixt: the delay an idle machine would see, whatever
// this one's load); prints {"delay": {...}} last.
const RUNNER = `
const { monitorEventLoopDelay, performance } = require('perf_hooks');
const { startBusyProbe } = require(${JSON.stringify(path.join(root, 'bench', 'loop_busy.js'))});
const file = require('path').resolve(process.argv[2]);
(async () => {
  await import('mixt'); // loading the addon is start-up, not serving
  const idle = monitorEventLoopDelay({ resolution: 5 });
  idle.enable();
  await new Promise((r) => setTimeout(r, 500));
  idle.disable();
  const busy = monitorEventLoopDelay({ resolution: 5 });
  busy.enable();
  const elu0 = performance.eventLoopUtilization();
  const cpu = startBusyProbe();
  process.on('beforeExit', () => {
    busy.disable();
    const { maxBusyMs } = cpu.stop();
    console.log(JSON.stringify({ delay: { idleMax: idle.max / 1e6, max: busy.max / 1e6, utilization: performance.eventLoopUtilization(elu0).utilization, maxBusyMs } }));
  });
  if (file.endsWith('.mjs')) await import(file); else require(file);
})();
`;

function runReadmeExamples(app: string, bin: string, env: NodeJS.ProcessEnv): void {
  const ex = readmeExamples();
  fs.writeFileSync(path.join(app, 'runner.cjs'), RUNNER);
  fs.writeFileSync(path.join(app, 'example.cjs'), ex.cjs);
  fs.writeFileSync(path.join(app, 'example.mjs'), ex.esm);
  // only the documented entry points: the build layout is not importable
  expect(() => run(path.join(bin, 'node'), ['-e', "require('mixt/dist/index.js')"], app, env)).toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
  for (const file of ['example.cjs', 'example.mjs']) {
    const lines = run(path.join(bin, 'node'), ['runner.cjs', file], app, { ...env, MIXT_DEVICE: 'cpu' }).trim().split('\n');
    const delay = JSON.parse(lines.pop()!).delay;
    const result = JSON.parse(lines.pop()!);
    expect(result.tokens).toHaveLength(20);
    expect(result.nll.length).toBe(3);
    expect(fs.existsSync(path.resolve(app, result.checkpoint, 'model.safetensors'))).toBe(true);
    if (file.endsWith('.mjs')) expect(result.aborted).toBe(true);
    // Issue 17's target, the loop never held 50 ms, judged in CPU time (Linux): measured 36-48 ms on a
    // loaded 2-core machine, and that longest run is the example's own first turn (createModel and
    // embeddedCorpus, synchronous by design), not training, saving, loading, generating or scoring
    // (each under 30 ms); the bound leaves room for a slower machine: 75 ms (before: 52-67 ms). The
    // wall-clock stall beyond the idle baseline stays a guard against blocking work anywhere (a
    // synchronous save or load of a checkpoint stalls the loop for seconds).
    const busyMs = delay.maxBusyMs === null ? 'n/a' : delay.maxBusyMs.toFixed(0);
    process.stdout.write(`${file}: event-loop delay ${delay.max.toFixed(0)} ms (idle ${delay.idleMax.toFixed(0)} ms), longest JS run ${busyMs} ms of CPU, utilization ${delay.utilization.toFixed(2)}\n`);
    if (delay.maxBusyMs !== null) expect(delay.maxBusyMs).toBeLessThan(75);
    expect(delay.max - delay.idleMax).toBeLessThan(150);
  }
  // the types resolve through the exports map (CJS and ESM resolution)
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const typed = `import { createModel, generate, type ModelConfig } from 'mixt';
import { train, type TrainSummary } from 'mixt/train';
import { fromTokens } from 'mixt/data';
import { PRESETS } from 'mixt/model';
const m = createModel('tiny');
const c: ModelConfig = m.config;
const s: Promise<TrainSummary> = train(m, fromTokens([[1, 2, 3]]), { steps: 1 }).summary;
void [c, s, generate, PRESETS];
`;
  fs.writeFileSync(path.join(app, 'typed.cts'), typed);
  fs.writeFileSync(path.join(app, 'typed.mts'), typed);
  run(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022', '--module', 'nodenext', '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'), 'typed.cts', 'typed.mts'], app);
}

describe('install from the packed tarball', () => {
  test('prebuild, pack, install with --ignore-scripts and no compiler, require, compute', () => {
    run(process.execPath, [path.join(root, 'scripts', 'prebuild.js')], root);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-pack-'));
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], root));
    const tarball = path.join(work, packed[0].filename);
    const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
    expect(files.some((f) => f.startsWith('prebuilds/') && f.endsWith('.node'))).toBe(true);
    expect(files).toContain('dist/index.js');
    expect(files.some((f) => f.startsWith('native/') || f.startsWith('test/'))).toBe(false);

    // A PATH with node and npm only: no cc, g++, cmake, nvcc, make.
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const npmCli = fs.realpathSync(execFileSync('which', ['npm'], { encoding: 'utf8' }).trim()); // npm-cli.js
    fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli}" "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, PATH: bin, npm_config_nodedir: '', npm_config_build_from_source: '' };
    for (const tool of ['cc', 'gcc', 'g++', 'cmake', 'nvcc', 'make']) {
      expect(() => execFileSync('sh', ['-c', `command -v ${tool}`], { env })).toThrow();
    }
    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    run(path.join(bin, 'npm'), ['install', tarball, '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], app, env);
    expect(fs.existsSync(path.join(app, 'node_modules', 'mixt', 'build'))).toBe(false);
    const out = run(
      path.join(bin, 'node'),
      ['-e', `const m = require('mixt');
        const a = m.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
        m.matmul(a, a).toArray().then((v) => console.log(JSON.stringify({ v: Array.from(v), dev: String(m.chooseDevice('auto').device) })));`],
      app,
      env,
    );
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r.v).toEqual([7, 10, 15, 22]);
    runReadmeExamples(app, bin, env);
    fs.rmSync(work, { recursive: true, force: true });
  });
});
