// Seeded fuzzing of the public API: every op and tensor method, called with wrong types, shapes,
// dtypes, NaN/Inf, empty and huge sizes, disposed tensors and ids out of range, in random order.
// Only typed errors may come out (TypeError/RangeError with a code, or MixtError); never a crash,
// a hang, or an untyped error; memory returns to where it started.
import * as mixt from '../lib';
import { rng } from './helpers';

const CALLS = Number(process.env.MIXT_FUZZ_CALLS ?? 5000);

type Fn = (...args: unknown[]) => unknown;

describe('fuzzed bad input', () => {
  test(`${CALLS} random calls raise only typed errors and leak nothing`, async () => {
    const r = rng(Number(process.env.MIXT_FUZZ_SEED ?? 1234));
    const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
    await mixt.sync();
    const before = mixt.memory().cpu ?? { tensors: 0, bytes: 0 };
    const made: mixt.Tensor[] = [];
    const track = (v: unknown) => {
      if (v instanceof mixt.Tensor) made.push(v);
      else if (v && typeof v === 'object') for (const x of Object.values(v as object)) if (x instanceof mixt.Tensor) made.push(x);
    };
    const shapes = [[], [0], [1], [3], [2, 3], [4, 4], [3, 2, 4], [2, 2, 2, 2], [5, 1], [1, 7]];
    const randomTensor = (): mixt.Tensor => {
      const dtype = pick(['f32', 'f64', 'bf16', 'i32'] as const);
      const shape = pick(shapes);
      const n = shape.reduce((a, b) => a * b, 1);
      const data = Array.from({ length: n }, () => (dtype === 'i32' ? Math.floor(r() * 9) - 2 : pick([r() * 4 - 2, 0.5, NaN, Infinity, -Infinity, 1e30])));
      const t = mixt.tensor(data, shape, { dtype });
      made.push(t);
      if (r() < 0.1) t.dispose();
      return t;
    };
    const junk = (): unknown =>
      pick([
        () => randomTensor(), () => randomTensor(), () => randomTensor(),
        () => pick([undefined, null, 0, -1, 1, 2, 3.5, NaN, Infinity, -Infinity, 2 ** 40, '', 'cpu', 'cuda', 'f32', 'nope', true, {}, [], [2, -1], [1e9, 1e9], [2 ** 40], [1.5]]),
        () => ({ causal: pick([true, false, 'yes']), docIds: randomTensor() }),
        () => ({ out: randomTensor(), beta: pick([0, 1, NaN]) }),
        () => ({ dtype: pick(['f32', 'f64', 'bf16', 'i32', 'f16']), device: pick(['cpu', 'cuda', 'cuda:7', 'tpu', undefined]) }),
        () => [randomTensor(), randomTensor()],
      ])();
    const ops = Object.entries(mixt.ops).filter(([, v]) => typeof v === 'function') as [string, Fn][];
    // tensor methods, called on tensors (the receiver is always a Tensor; the arguments are junk)
    const tensorOf = (t: unknown) => (t instanceof mixt.Tensor ? t : randomTensor());
    const methods: [string, Fn][] = [
      ['reshape', (t, s) => tensorOf(t).reshape(s as number[])],
      ['slice', (t, a, b) => tensorOf(t).slice(a as number, b as number)],
      ['to', (t, d) => tensorOf(t).to(d as string)],
      ['clone', (t) => tensorOf(t).clone()],
      ['toArray', (t) => tensorOf(t).toArray()],
      ['item', (t) => tensorOf(t).item()],
      ['Generator', (s) => new mixt.Generator(s as number)],
      ['device', (s) => mixt.device(s as string)],
    ];
    const all = [...ops, ...methods];
    const bad: string[] = [];
    const check = (name: string, e: unknown) => {
      const err = e as Error & { code?: string };
      const typed = (err instanceof TypeError || err instanceof RangeError || err instanceof mixt.MixtError) && typeof err.code === 'string';
      if (!typed) bad.push(`${name}: ${err?.constructor?.name} ${err?.message}`);
    };
    for (let i = 0; i < CALLS; i++) {
      const [name, fn] = pick(all);
      const args = Array.from({ length: 1 + Math.floor(r() * 5) }, junk);
      try {
        const out = fn(...args);
        if (out instanceof Promise) {
          await out.then(track, (e) => check(name, e));
        } else track(out);
      } catch (e) {
        check(name, e);
      }
      if (i % 200 === 199) await mixt.sync().catch((e) => check('sync', e));
    }
    await mixt.sync().catch((e) => check('sync', e));
    await mixt.sync();
    for (const t of made) t.dispose();
    expect(bad.slice(0, 10)).toEqual([]);
    const after = mixt.memory().cpu;
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toBe(before.bytes);
  });
});
