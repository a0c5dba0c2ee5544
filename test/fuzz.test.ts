// Property-based fuzzing of every public function (test/fixtures/fuzz-worker.js, fast-check), one
// CHILD PROCESS per batch: a crash (a signal, an abort) fails the test with the batch's seed and
// the call that was running; a batch past its time limit is a hang; an untyped error is reported
// with fast-check's counterexample; live tensors and bytes return to where they started.
//
// CI runs MIXT_FUZZ_CALLS (default 12000) calls in batches of MIXT_FUZZ_BATCH (3000), seeds
// MIXT_FUZZ_SEED (1234), +1, +2, ... A long run, outside CI:
//   MIXT_FUZZ_CALLS=1000000 MIXT_FUZZ_SEED=$RANDOM npx jest test/fuzz.test.ts
// Replay one batch: node --expose-gc test/fixtures/fuzz-worker.js <seed> <calls>
import { spawn } from 'child_process';
import * as path from 'path';

const CALLS = Number(process.env.MIXT_FUZZ_CALLS ?? 12000);
const BATCH = Number(process.env.MIXT_FUZZ_BATCH ?? 3000);
const SEED = Number(process.env.MIXT_FUZZ_SEED ?? 1234);
const BATCH_LIMIT_MS = Number(process.env.MIXT_FUZZ_BATCH_SECONDS ?? 300) * 1000;
const WORKER = path.join(__dirname, 'fixtures', 'fuzz-worker.js');

interface BatchReport {
  seed: number;
  calls: number;
  crashed: string | null; // signal or exit status, with the last call started
  hung: boolean;
  bad: string[];
  failure: string | null;
  before?: { tensors: number; bytes: number };
  after?: { tensors: number; bytes: number };
}

function runBatch(seed: number, calls: number, env: NodeJS.ProcessEnv = {}): Promise<BatchReport> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', WORKER, String(seed), String(calls)], {
      env: { ...process.env, ...env, MIXT_SKIP_LOAD_CHECK: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let lastCall = '';
    let errTail = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d: Buffer) => {
      errTail = (errTail + d.toString()).slice(-20000);
      const lines = errTail.split('\n').filter((l) => l.startsWith('call '));
      if (lines.length) lastCall = lines[lines.length - 1].slice(0, 600);
    });
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, BATCH_LIMIT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let parsed: Partial<BatchReport> = {};
      try {
        parsed = JSON.parse(out.trim().split('\n').pop() ?? '');
      } catch {
        // no report: the process died before writing it
      }
      const crashed = hung || (code === 0 && !signal) ? null : `${signal ?? `exit ${code}`} during: ${lastCall || '(before the first call)'}`;
      resolve({ seed, calls: parsed.calls ?? 0, crashed, hung, bad: parsed.bad ?? [], failure: parsed.failure ?? null, before: parsed.before, after: parsed.after });
    });
  });
}

function problems(r: BatchReport): string[] {
  const p: string[] = [];
  if (r.hung) p.push(`seed ${r.seed}: hung (no result within ${BATCH_LIMIT_MS / 1000} s)`);
  if (r.crashed) p.push(`seed ${r.seed}: crashed by ${r.crashed}`);
  for (const b of r.bad) p.push(`seed ${r.seed}: untyped error ${b}`);
  if (r.failure && !r.bad.length) p.push(`seed ${r.seed}: ${r.failure}`);
  if (!r.crashed && !r.hung && r.before && r.after && (r.after.tensors !== r.before.tensors || r.after.bytes !== r.before.bytes)) {
    p.push(`seed ${r.seed}: leaked ${r.after.tensors - r.before.tensors} tensors, ${r.after.bytes - r.before.bytes} bytes`);
  }
  return p;
}

describe('fuzzed public API (fast-check, a child process per batch)', () => {
  const batches = Math.max(1, Math.ceil(CALLS / BATCH));
  test(
    `${CALLS} calls in ${batches} batches from seed ${SEED}: no crash, no hang, only typed errors, no leak`,
    async () => {
      const found: string[] = [];
      let done = 0;
      for (let i = 0; i < batches; i++) {
        const calls = Math.min(BATCH, CALLS - i * BATCH);
        const r = await runBatch(SEED + i, calls);
        done += r.calls;
        found.push(...problems(r));
        if (found.length >= 20) break;
      }
      if (process.env.MIXT_FUZZ_CALLS) process.stderr.write(`fuzz: ${done} calls, ${found.length} problems\n`);
      expect(found).toEqual([]);
      expect(done).toBe(CALLS);
    },
    Math.max(120000, batches * BATCH_LIMIT_MS),
  );

  test('a batch that dies by a signal is reported as a crash with its seed and the running call', async () => {
    const r = await runBatch(99, 20, { MIXT_FUZZ_SELFTEST_CRASH_AT: '7' });
    const p = problems(r);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^seed 99: crashed by SIGSEGV during: call 6 /);
  });
});
