import * as mixt from '../lib';
import { values } from './helpers';

describe('tensors', () => {
  test('round-trip every dtype through native memory', async () => {
    const data = [1.5, -2.25, 3, 0.1, 1e-3, -7];
    expect(await values(mixt.tensor(new Float32Array(data), [2, 3]))).toEqual(Float64Array.from(Float32Array.from(data)));
    expect(await values(mixt.tensor(new Float64Array(data), [3, 2]))).toEqual(Float64Array.from(data));
    expect(Array.from(await mixt.tensor(new Int32Array([1, -2, 3]), [3]).toArray())).toEqual([1, -2, 3]);
    const b = await mixt.tensor(data, [6], { dtype: 'bf16' }).toArray();
    // bf16 keeps 8 bits of mantissa: 0.1 -> 0.10009765625
    expect(Array.from(b)).toEqual([1.5, -2.25, 3, 0.10009765625, 0.00099945068359375, -7]);
  });

  test('zeros, ones and full fill every element', async () => {
    expect(Array.from(await mixt.zeros([2, 2]).toArray())).toEqual([0, 0, 0, 0]);
    expect(Array.from(await mixt.ones([3], { dtype: 'f64' }).toArray())).toEqual([1, 1, 1]);
    expect(Array.from(await mixt.full([2], 7, { dtype: 'i32' }).toArray())).toEqual([7, 7]);
    expect(Array.from(await mixt.full([2], 0.3, { dtype: 'bf16' }).toArray())).toEqual([0.30078125, 0.30078125]);
  });

  test('item reads a one-element tensor and rejects others', async () => {
    expect(await mixt.full([1], 4.5).item()).toBe(4.5);
    await expect(mixt.zeros([2]).item()).rejects.toThrow(RangeError);
  });

  test('reshape and slice share storage', async () => {
    const t = mixt.tensor(new Float32Array([0, 1, 2, 3, 4, 5]), [3, 2]);
    const r = t.reshape([2, -1]);
    expect(r.shape).toEqual([2, 3]);
    const s = t.slice(1, 3);
    expect(s.shape).toEqual([2, 2]);
    expect(Array.from(await s.toArray())).toEqual([2, 3, 4, 5]);
    mixt.fill_(s, 9);
    expect(Array.from(await t.toArray())).toEqual([0, 1, 9, 9, 9, 9]);
    expect(() => t.reshape([4, 2])).toThrow(RangeError);
    expect(() => t.slice(2, 4)).toThrow(/argument "end" expected an integer in \[2, 3\], received 4/);
  });

  test('use after dispose is a DisposedError with code ERR_DISPOSED', async () => {
    const t = mixt.zeros([4]);
    t.dispose();
    t.dispose(); // idempotent
    expect(t.disposed).toBe(true);
    expect(() => mixt.add(t, t)).toThrow(mixt.DisposedError);
    expect(() => mixt.scale(t, 2)).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED', message: expect.stringMatching(/scale: argument "x"/) }));
    await expect(t.toArray()).rejects.toThrow(mixt.DisposedError);
  });

  test('memory() counts live tensors and bytes exactly, and the peak', async () => {
    await mixt.sync();
    const before = mixt.memory().cpu;
    mixt.resetPeakMemory();
    const a = mixt.zeros([1000]); // 4000 bytes
    const b = mixt.zeros([10, 10], { dtype: 'f64' }); // 800 bytes
    const v = a.reshape([10, 100]); // a view: a handle, no bytes
    let m = mixt.memory().cpu;
    expect(m.tensors - before.tensors).toBe(3);
    expect(m.bytes - before.bytes).toBe(4800);
    a.dispose();
    m = mixt.memory().cpu;
    expect(m.bytes - before.bytes).toBe(4800); // the view keeps the storage
    v.dispose();
    b.dispose();
    m = mixt.memory().cpu;
    expect(m.tensors).toBe(before.tensors);
    expect(m.bytes).toBe(before.bytes);
    expect(m.peakBytes).toBe(before.bytes + 4800);
  });

  test('`using` disposes at the end of the scope', () => {
    const before = mixt.memory().cpu?.bytes ?? 0;
    {
      using t = mixt.zeros([256]);
      expect(mixt.memory().cpu.bytes - before).toBe(1024);
      expect(t.disposed).toBe(false);
    }
    expect(mixt.memory().cpu.bytes).toBe(before);
  });

  test('creation rejects bad arguments before native code runs', () => {
    expect(() => mixt.zeros([2, -1])).toThrow(/zeros: argument "shape" expected non-negative integer sizes, received \[2, -1\]/);
    expect(() => mixt.zeros('3' as unknown as number[])).toThrow(TypeError);
    expect(() => mixt.zeros([2], { dtype: 'f16' as mixt.DType })).toThrow(/argument "options.dtype" expected one of 'f32', 'f64', 'bf16', 'i32', received "f16"/);
    expect(() => mixt.tensor(new Float32Array(3), [2, 2])).toThrow(/a shape with 3 elements/);
    expect(() => mixt.tensor([1.5], [1], { dtype: 'i32' })).toThrow(/32-bit integers/);
    expect(() => mixt.full([2], '1' as unknown as number)).toThrow(TypeError);
    expect(() => mixt.zeros([1, 1, 1, 1, 1, 1, 1, 1, 1])).toThrow(/at most 8 dimensions/);
  });

  test('to() copies between devices and keeps values; clone is independent', async () => {
    const t = mixt.tensor(new Float32Array([1, 2, 3]));
    const c = t.clone();
    mixt.fill_(t, 0);
    expect(Array.from(await c.toArray())).toEqual([1, 2, 3]);
    expect(c.device.toString()).toBe('cpu');
  });

  test('empty tensors work end to end', async () => {
    const t = mixt.zeros([0, 4]);
    expect(t.numel).toBe(0);
    expect((await t.toArray()).length).toBe(0);
    expect((await mixt.add(t, t).toArray()).length).toBe(0);
  });
});
