// One regression test per class of input an outside fuzzer found killing the process or slipping
// through untyped (issue 19): 0-sized last axes, element counts that overflow, index data the
// kernels trusted, tensors whose declared dtype lies about their native storage, and untyped or
// missing errors (Proxies, falsy options, bigint/NaN counts, shapes that change under a getter,
// unknown option keys).
import * as mixt from '../lib';
import { native } from '../lib/core/native';
import { randn as hostRandn, values } from './helpers';

const i32 = (v: number[], shape = [v.length]) => mixt.tensor(new Int32Array(v), shape);
const f32 = (v: ArrayLike<number>, shape: number[]) => mixt.tensor(Float32Array.from(v), shape);

// the error a call throws (synchronously, or from the queued work at the next sync)
async function failure(f: () => unknown): Promise<Error & { code?: string }> {
  try {
    f();
    await mixt.sync();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error');
}

describe('a 0-sized last axis is valid: empty results, no division by zero', () => {
  const x = () => mixt.zeros([3, 0]);

  test('rowScale, rowDot', async () => {
    const w = f32([1, 2, 3], [3]);
    expect(mixt.rowScale(x(), w).shape).toEqual([3, 0]);
    expect(Array.from(await mixt.rowDot(x(), x()).toArray())).toEqual([0, 0, 0]);
  });

  test('rmsNorm and layerNorm with their backwards', async () => {
    const w = mixt.zeros([1, 0]);
    const { y, rstd } = mixt.rmsNorm(x(), w, null, { eps: 0.25 });
    expect(y.shape).toEqual([3, 0]);
    expect(rstd.shape).toEqual([3]); // the statistics of empty rows exist (their value means nothing)
    const back = mixt.rmsNormBackward(x(), x(), w, null, rstd);
    expect(back.dx.shape).toEqual([3, 0]);
    expect(back.dweight.shape).toEqual([1, 0]);
    const ln = mixt.layerNorm(x(), w, mixt.zeros([1, 0]), null);
    expect(ln.y.shape).toEqual([3, 0]);
    const lb = mixt.layerNormBackward(x(), x(), w, null, ln.mean, ln.rstd);
    expect([lb.dx.shape, lb.dweight.shape, lb.dbias.shape]).toEqual([[3, 0], [1, 0], [1, 0]]);
    await mixt.sync();
  });

  test('swiglu and swigluBackward', async () => {
    expect(mixt.swiglu(x()).shape).toEqual([3, 0]);
    expect(mixt.swigluBackward(x(), x()).shape).toEqual([3, 0]);
    await mixt.sync();
  });

  test('crossEntropyRows over an empty vocabulary: ignored rows give 0, a target is bad data', async () => {
    const r = mixt.crossEntropyRows(x(), i32([-1, -1, -1]));
    expect(Array.from(await r.loss.toArray())).toEqual([0, 0, 0]);
    mixt.crossEntropyRowsBackward_(x(), i32([-1, -1, -1]), r.lse, mixt.ones([3]));
    const e = await failure(() => mixt.crossEntropyRows(x(), i32([0, -1, -1])));
    expect(e.code).toBe('ERR_BAD_DATA');
  });
});

describe('element counts past the limit are refused before allocation', () => {
  test('zeros([274177, 67280421310721]) is a RangeError naming the argument; memory() stays exact', async () => {
    await mixt.sync();
    const before = mixt.memory().cpu;
    for (const shape of [[274177, 67280421310721], [2 ** 31, 2 ** 31, 2 ** 31], [2 ** 47]]) {
      expect(() => mixt.zeros(shape)).toThrow(RangeError);
      expect(() => mixt.zeros(shape)).toThrow(/zeros: argument "shape" expected at most 2\^46 elements/);
    }
    expect(mixt.ones([2 ** 20, 2 ** 20, 0]).numel).toBe(0);
    // the non-zero sizes count even when one is 0: rows of an empty last axis stay representable
    expect(() => mixt.ones([2 ** 40, 2 ** 40, 0])).toThrow(RangeError);
    const after = mixt.memory().cpu;
    expect(after.bytes).toBe(before.bytes);
    expect(after.bytes).toBeGreaterThanOrEqual(0);
  });

  test('the addon checks the product itself, in 64-bit arithmetic that cannot wrap', () => {
    const b = native();
    for (const shape of [[274177, 67280421310721], [2 ** 32, 2 ** 32], [4294967296, 4294967296, 4]]) {
      let e: (Error & { code?: string }) | null = null;
      try {
        b.empty(-1, 0, shape);
      } catch (err) {
        e = err as Error & { code?: string };
      }
      expect(e?.code).toBe('ERR_INVALID_ARG');
    }
    const t = mixt.ones([4]);
    expect(() => t.handle().view([2 ** 32, 2 ** 32], 0)).toThrow(/element count exceeds/);
    expect(mixt.memory().cpu.bytes).toBeGreaterThanOrEqual(0);
  });
});

describe('index data is checked where it is used (ERR_BAD_DATA), never trusted', () => {
  test('segmentIds: a boundary past the token count', async () => {
    const e = await failure(() => mixt.segmentIds(i32([0, 100000, 4]), 4));
    expect(e.code).toBe('ERR_BAD_DATA');
    expect(Array.from(await mixt.segmentIds(i32([0, 1, 4]), 4).toArray())).toEqual([0, 1, 1, 1]);
  });

  test('slotTokens: an assignment with no expert entry', async () => {
    const e = await failure(() => mixt.slotTokens(i32([0, 100000]), 1, { experts: i32([0]), noop: 0 }));
    expect(e.code).toBe('ERR_BAD_DATA');
    expect(Array.from(await mixt.slotTokens(i32([0, 3, -1]), 2, { experts: i32([1, 0, 1, 0]), noop: 0 }).toArray())).toEqual([0, -1, -1]);
  });

  test('capacitySlots: offsets past the assignments', async () => {
    const e = await failure(() => mixt.capacitySlots(i32([0, 1]), i32([0, 100000, 2]), 4));
    expect(e.code).toBe('ERR_BAD_DATA');
    const e2 = await failure(() => mixt.capacitySlots(i32([0, 1]), i32([0, -5, 2]), 1));
    expect(e2.code).toBe('ERR_BAD_DATA');
  });

  test('routerBackward: a chosen expert outside [0, E); companion tensors of the wrong size', async () => {
    const logits = f32(hostRandn(12, 5), [3, 4]);
    const choice = mixt.routerTopk(logits, 2);
    const experts = i32([0, 1, 2, 99999, 0, 1], [3, 2]);
    const e = await failure(() => mixt.routerBackward(logits, { ...choice, experts }, { dgates: mixt.ones([3, 2]) }));
    expect(e.code).toBe('ERR_BAD_DATA');
    const e2 = await failure(() => mixt.routerBackward(logits, { ...choice, probs: mixt.ones([1]) }, { dgates: mixt.ones([3, 2]) }));
    expect(e2).toBeInstanceOf(RangeError);
    expect(e2.message).toMatch(/routerBackward: argument "choice.probs" expected shape \[3, 4\]/);
    // and the addon refuses it on its own, whatever the caller
    const b = native();
    expect(() =>
      b.routerBackward(logits.handle(), 2, 0, false, mixt.ones([1]).handle(), choice.lse.handle(), choice.experts.handle(),
        choice.gates.handle(), null, null, 0, mixt.empty([3, 4]).handle()),
    ).toThrow(/routerBackward: tensor "probs" has 1 elements, expected 12/);
  });
});

describe('the addon checks every handle itself', () => {
  test('a Tensor that declares another dtype than its storage is refused by the kernel entry', async () => {
    const real = mixt.ones([4], { dtype: 'i32' });
    const lie = new mixt.Tensor(real.handle(), [4], 'f32', real.device);
    const e = await failure(() => mixt.add(lie, mixt.ones([4])));
    expect(e.code).toBe('ERR_INVALID_ARG');
    expect(e.message).toMatch(/binary: tensor "a" has dtype i32, expected a float dtype/);
  });

  test('mixed dtypes straight into the binding', () => {
    const b = native();
    const a64 = mixt.ones([8], { dtype: 'f64' }), o32 = mixt.empty([8]);
    expect(() => b.binary(0, a64.handle(), a64.handle(), o32.handle())).toThrow(/binary: tensor "out" has dtype f32, expected f64/);
    expect(() => b.unary(99, o32.handle(), o32.handle())).toThrow(/op: unknown code 99/);
    expect(() => b.rowScale(a64.reshape([2, 4]).handle(), mixt.ones([2]).handle(), a64.handle())).toThrow(/rowScale: tensor "w" has dtype f32, expected f64/);
  });

  test('a Tensor whose shape and dtype do not match its handle is a TypeError at construction', () => {
    const t = mixt.ones([4]);
    expect(() => new mixt.Tensor(t.handle(), [8], 'f32', t.device)).toThrow(TypeError);
    expect(() => new mixt.Tensor(t.handle(), [2], 'f64', t.device)).not.toThrow(); // same bytes: the kernels check the dtype
    expect(() => new mixt.Tensor({} as never, [4], 'f32', t.device)).toThrow(/Tensor: argument "handle"/);
  });
});

describe('typed errors naming the function and argument', () => {
  test('a Proxy of a Tensor', () => {
    const t = mixt.ones([2, 2]);
    const p = new Proxy(t, {});
    expect(() => mixt.add(p, t)).toThrow(TypeError);
    expect(() => mixt.add(p, t)).toThrow(/add: argument "a" expected a Tensor/);
    expect(() => p.reshape([4])).toThrow(/Tensor.reshape: argument "this" expected a Tensor/);
    expect(() => p.dispose()).toThrow(TypeError);
  });

  test('gradScale: 0 in adamwStep', () => {
    const p = mixt.ones([2]), z = () => mixt.zeros([2]);
    const o = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 };
    expect(() => mixt.adamwStep(p, z(), z(), z(), { ...o, gradScale: 0 as never })).toThrow(/adamwStep: argument "options.gradScale" expected a Tensor, received 0/);
    expect(() => mixt.adamwStep(p, z(), z(), z(), { ...o, gradscale: 1 } as never)).toThrow(/unknown key 'gradscale'/);
  });

  test('Generator.take(10n), take(NaN), members used on a non-Generator', () => {
    const g = new mixt.Generator(1);
    expect(() => g.take(10n as never)).toThrow(TypeError);
    expect(() => g.take(10n as never)).toThrow(/Generator.take: argument "n" expected an integer/);
    expect(() => g.take(NaN)).toThrow(/Generator.take: argument "n"/);
    expect(() => g.take(-1)).toThrow(RangeError);
    expect(g.take(8)).toBe(0);
    expect(g.offset).toBe(2);
    expect(() => g.setState(Object.create(mixt.Generator.prototype))).toThrow(/Generator.seed: argument "this"/);
  });

  test('a shape that changes under a getter: what was checked is what is used', () => {
    let reads = 0;
    const shape = [2, 3];
    Object.defineProperty(shape, 1, { get: () => (reads++ ? 2 ** 40 : 3), enumerable: true });
    const t = mixt.zeros(shape);
    expect(t.shape).toEqual([2, 3]);
    expect(reads).toBe(1);
    expect(mixt.memory().cpu.bytes).toBeGreaterThanOrEqual(24);
  });

  test('unknown option keys are named, with the accepted keys', () => {
    expect(() => mixt.randn([2], { seed: 7 } as never)).toThrow(TypeError);
    expect(() => mixt.randn([2], { seed: 7 } as never)).toThrow(
      /randn: argument "options" expected only the keys 'dtype', 'device', 'generator', 'mean', 'std', received an unknown key 'seed'/,
    );
    expect(() => mixt.matmul(mixt.ones([2, 2]), mixt.ones([2, 2]), { transpose: true } as never)).toThrow(/matmul: .*unknown key 'transpose'/);
    expect(() => mixt.zeros([2], { dtyp: 'f64' } as never)).toThrow(/zeros: .*unknown key 'dtyp'/);
  });

  test('options read once: a getter cannot swap a checked value', () => {
    let reads = 0;
    const opts = {
      get dtype() {
        return reads++ ? 'nope' : 'f64';
      },
    };
    const t = mixt.zeros([2], opts as never);
    expect(t.dtype).toBe('f64');
  });
});
