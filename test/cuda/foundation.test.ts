// CUDA against the CPU backend, op by op, on random inputs. Skipped (visibly) without a usable GPU.
import * as mixt from '../../lib';
import { describeCuda, expectClose, randn, uniform, values } from '../helpers';

const BF16 = { rtol: 1e-2, atol: 1e-2 };
const F32 = { rtol: 1e-5, atol: 1e-5 };

async function both(make: (device: string, dtype: mixt.DType) => mixt.Tensor, dtype: mixt.DType, tol = dtype === 'bf16' ? BF16 : F32, what = '') {
  // bf16: the CPU computes on the same bf16 inputs (f32 arithmetic, bf16 outputs); a reference on
  // unrounded inputs differs by the input rounding alone (~0.2% per operand, growing with sums)
  const ref = await values(make('cpu', dtype));
  const got = await values(make('cuda', dtype));
  expectClose(got, ref, tol, what);
}

describeCuda('CUDA backend parity with CPU', () => {
  test('Philox streams are identical on CPU and CUDA, bit for bit', async () => {
    for (const n of [1, 3, 1000, 65537]) {
      const c = await mixt.randn([n], { generator: new mixt.Generator(99), device: 'cpu' }).toArray();
      const g = await mixt.randn([n], { generator: new mixt.Generator(99), device: 'cuda' }).toArray();
      expect(Buffer.from(g.buffer).equals(Buffer.from(c.buffer))).toBe(true);
      const cu = await mixt.rand([n], { generator: new mixt.Generator(5), device: 'cpu', low: -2, high: 2 }).toArray();
      const gu = await mixt.rand([n], { generator: new mixt.Generator(5), device: 'cuda', low: -2, high: 2 }).toArray();
      expect(Buffer.from(gu.buffer).equals(Buffer.from(cu.buffer))).toBe(true);
    }
  });

  test('transfers round-trip every dtype', async () => {
    const x = randn(1000, 1);
    for (const dtype of ['f32', 'bf16', 'i32'] as mixt.DType[]) {
      const src = dtype === 'i32' ? x.map((v) => Math.round(v * 100)) : x;
      const c = mixt.tensor(Array.from(src), [10, 100], { dtype });
      const g = c.to('cuda');
      expect(g.device.toString()).toBe('cuda:0');
      expect(await values(g)).toEqual(await values(c));
      expect(await values(g.to('cpu'))).toEqual(await values(c));
    }
  });

  for (const dtype of ['f32', 'bf16'] as mixt.DType[]) {
    test(`elementwise, ${dtype}`, async () => {
      const n = 4099;
      const av = randn(n * 2, 2), bv = randn(n * 2, 3).map((v) => (Math.abs(v) < 0.2 ? 0.7 : v)), pv = uniform(n * 2, 4, 0.1, 3);
      const mk = (d: string, dt: mixt.DType, v: Float64Array, shape = [2, n]) => mixt.tensor(Array.from(v), shape, { device: d, dtype: dt });
      for (const op of [mixt.add, mixt.sub, mixt.mul, mixt.div, mixt.maximum, mixt.minimum]) {
        await both((d, dt) => op(mk(d, dt, av), mk(d, dt, bv)), dtype, undefined, op.name);
        await both((d, dt) => op(mk(d, dt, av), mk(d, dt, bv.subarray(0, n), [n])), dtype, undefined, `${op.name} broadcast`);
      }
      for (const op of mixt.UNARY_OPS) {
        const positive = ['log', 'sqrt', 'rsqrt', 'reciprocal'].includes(op);
        await both((d, dt) => mixt.unary(op, mk(d, dt, positive ? pv : av)), dtype, dtype === 'f32' ? { rtol: 2e-6, atol: 2e-6 } : BF16, op);
      }
      await both((d, dt) => mixt.axpby(0.3, mk(d, dt, av), -1.2, mk(d, dt, bv)), dtype);
      await both((d, dt) => mixt.scale(mk(d, dt, av), 2.5, 0.5), dtype);
      await both((d, dt) => mixt.cast(mixt.cast(mk(d, dt, av), 'bf16'), 'f32'), dtype, F32, 'cast');
    });

    test(`reductions, ${dtype}`, async () => {
      const shape = [7, 333, 5];
      const xv = randn(7 * 333 * 5, 5);
      for (const op of ['sum', 'mean', 'max', 'min', 'sumSquares'] as mixt.ReduceName[]) {
        for (const axis of [0, 1, 2, undefined]) {
          await both((d, dt) => mixt.reduce(op, mixt.tensor(Array.from(xv), shape, { device: d, dtype: dt }), { axis }), dtype,
            dtype === 'f32' ? { rtol: 1e-5, atol: 1e-4 } : { rtol: 2e-2, atol: 2e-2 }, `${op} ${axis}`);
        }
      }
    });

    test(`matmul, ${dtype}, uneven shapes and transposes`, async () => {
      for (const [m, n, k] of [[1, 1, 1], [65, 33, 17], [128, 256, 64], [300, 70, 129]]) {
        const av = randn(m * k, m + n), bv = randn(k * n, k);
        for (const transA of [false, true])
          for (const transB of [false, true]) {
            await both((d, dt) => {
              const a = mixt.tensor(Array.from(av), transA ? [k, m] : [m, k], { device: d, dtype: dt });
              const b = mixt.tensor(Array.from(bv), transB ? [n, k] : [k, n], { device: d, dtype: dt });
              return mixt.matmul(a, b, { transA, transB });
            }, dtype, dtype === 'f32' ? { rtol: 1e-5, atol: 1e-5 * Math.sqrt(k) } : { rtol: 2e-2, atol: 2e-2 * Math.sqrt(k) / 4 }, `${m}x${n}x${k}`);
          }
      }
    });
  }

  test('memory on CUDA is counted exactly; an impossible allocation is ERR_CUDA_OOM and the process goes on', async () => {
    const before = mixt.memory()['cuda:0']?.bytes ?? 0;
    const t = mixt.zeros([1 << 20], { device: 'cuda' });
    expect(mixt.memory()['cuda:0'].bytes - before).toBe(4 << 20);
    t.dispose();
    expect(mixt.memory()['cuda:0'].bytes).toBe(before);
    const total = mixt.cudaStatus().devices[0].totalMemory;
    let err: unknown;
    try {
      mixt.empty([Math.ceil((total * 2) / 4)], { device: 'cuda' });
    } catch (e) {
      err = e;
    }
    expect((err as mixt.MixtError).code).toBe('ERR_CUDA_OOM');
    expect(Array.from(await mixt.ones([3], { device: 'cuda' }).toArray())).toEqual([1, 1, 1]);
  });

  test('a kernel that finds bad data fails the next read with the op name', async () => {
    const bad = mixt.tensor(new Float32Array([0, NaN, 1]), [3], { device: 'cuda' });
    mixt.assertFinite(bad, 'loss');
    await expect(mixt.sync()).rejects.toThrow(/assertFinite\(loss\): a value is NaN or infinite/);
    await mixt.sync();
  });
});
