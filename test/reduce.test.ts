import * as mixt from '../lib';
import { TOL, expectClose, quantize, randn, values } from './helpers';

function refReduce(x: Float64Array, shape: number[], axis: number, op: string): Float64Array {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const vals = Array.from({ length: n }, (_, k) => x[(o * n + k) * inner + i]);
      out[o * inner + i] =
        op === 'sum' ? vals.reduce((a, b) => a + b, 0)
        : op === 'mean' ? vals.reduce((a, b) => a + b, 0) / n
        : op === 'max' ? Math.max(...vals)
        : op === 'min' ? Math.min(...vals)
        : vals.reduce((a, b) => a + b * b, 0);
    }
  return out;
}

describe('reductions', () => {
  const shape = [5, 37, 3];
  for (const dtype of ['f64', 'f32', 'bf16'] as mixt.DType[]) {
    test(`sum, mean, max, min, sumSquares on every axis, ${dtype}`, async () => {
      const xv = quantize(randn(5 * 37 * 3, 9), dtype);
      const x = mixt.tensor(Array.from(xv), shape, { dtype });
      for (const op of ['sum', 'mean', 'max', 'min', 'sumSquares'] as mixt.ReduceName[]) {
        for (let axis = 0; axis < 3; axis++) {
          const r = mixt.reduce(op, x, { axis });
          expect(r.shape).toEqual(shape.filter((_, i) => i !== axis));
          expectClose(await values(r), refReduce(xv, shape, axis, op), TOL[dtype], `${op} axis ${axis}`);
        }
        const all = await values(mixt.reduce(op, x));
        expectClose(all, refReduce(xv, [1, xv.length, 1], 1, op), TOL[dtype], `${op} all`);
      }
    });
  }

  test('keepDims and negative axes', () => {
    const x = mixt.zeros([2, 3, 4]);
    expect(mixt.sum(x, { axis: -1, keepDims: true }).shape).toEqual([2, 3, 1]);
    expect(mixt.max(x, { axis: 0 }).shape).toEqual([3, 4]);
    expect(() => mixt.sum(x, { axis: 3 })).toThrow(/options.axis/);
  });

  test('max propagates NaN', async () => {
    const x = mixt.tensor(new Float32Array([1, NaN, 3]));
    expect(Number.isNaN(await mixt.max(x).item())).toBe(true);
  });

  test('assertFinite fails the next read with ERR_NON_FINITE naming the tensor', async () => {
    const bad = mixt.tensor(new Float32Array([1, 2, Infinity, 4]));
    mixt.assertFinite(bad, 'grad.layers.0.wq');
    const other = mixt.ones([2]);
    let err: unknown;
    try {
      await other.toArray();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(mixt.MixtError);
    expect((err as mixt.MixtError).code).toBe('ERR_NON_FINITE');
    expect((err as Error).message).toMatch(/assertFinite\(grad\.layers\.0\.wq\): an infinity at element 2/);
    // reported once: the stream goes on
    expect(Array.from(await other.toArray())).toEqual([1, 1]);
    mixt.assertFinite(other, 'ok');
    await mixt.sync();
  });
});
