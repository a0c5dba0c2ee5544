// Seeded fuzzing of the public API (test/fixtures/fuzz-worker.js, in its own worker thread so
// its memory accounting is its own): every op and tensor method, called with wrong types, shapes,
// dtypes, NaN/Inf, empty and huge sizes, disposed tensors and ids out of range, in random order.
// Only typed errors may come out (TypeError/RangeError with a code, or MixtError); never a crash,
// a hang or an untyped error; live tensors and bytes return to where they started.
import * as path from 'path';
import { Worker } from 'worker_threads';

const CALLS = Number(process.env.MIXT_FUZZ_CALLS ?? 5000);
const SEEDS = (process.env.MIXT_FUZZ_SEEDS ?? '1234,77').split(',').map(Number);

describe('fuzzed bad input', () => {
  for (const seed of SEEDS) {
    test(`${CALLS} random calls (seed ${seed}) raise only typed errors and leak nothing`, async () => {
      const res = await new Promise<{ bad: string[]; before: { tensors: number; bytes: number }; after: { tensors: number; bytes: number }; calls: number }>(
        (resolve, reject) => {
          const w = new Worker(path.join(__dirname, 'fixtures', 'fuzz-worker.js'), { workerData: { calls: CALLS, seed } });
          w.once('message', resolve);
          w.once('error', reject);
        },
      );
      expect(res.bad).toEqual([]);
      expect(res.calls).toBe(CALLS);
      expect(res.after.tensors).toBe(res.before.tensors);
      expect(res.after.bytes).toBe(res.before.bytes);
    });
  }
});
