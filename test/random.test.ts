import * as mixt from '../lib';

// An independent reimplementation of the documented stream (native/kernels/random.h) in JS, with
// float32 rounding after every operation, so the CPU backend is held to it bit for bit.
const f = Math.fround;
function philox(counter: bigint, key: bigint): number[] {
  const M = 0xffffffffn;
  let c0 = counter & M, c1 = (counter >> 32n) & M, c2 = 0n, c3 = 0n;
  let k0 = key & M, k1 = (key >> 32n) & M;
  for (let r = 0; r < 10; r++) {
    const p0 = 0xd2511f53n * c0, p1 = 0xcd9e8d57n * c2;
    const hi0 = p0 >> 32n, lo0 = p0 & M, hi1 = p1 >> 32n, lo1 = p1 & M;
    const n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 = (k0 + 0x9e3779b9n) & M;
    k1 = (k1 + 0xbb67ae85n) & M;
  }
  return [c0, c1, c2, c3].map(Number);
}
const uniform01 = (x: number) => f((x >>> 8) * f(1 / 16777216));
function plog(u: number): number {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, u);
  const bits = buf.getUint32(0);
  let e = ((bits >>> 23) & 0xff) - 127;
  buf.setUint32(0, ((bits & 0x007fffff) | 0x3f800000) >>> 0);
  let m = buf.getFloat32(0);
  if (m > f(1.41421356)) { m = f(m * 0.5); e += 1; }
  const s = f(f(m - 1) / f(m + 1));
  const s2 = f(s * s);
  let p = f(1 / 13);
  for (const c of [1 / 11, 1 / 9, 1 / 7, 1 / 5, 1 / 3, 1]) p = f(f(p * s2) + f(c));
  const lnm = f(f(2 * s) * p);
  return f(f(e * f(0.693147180559945)) + lnm);
}
function psincos(t: number): [number, number] {
  let q = Math.trunc(f(t * 4));
  let r = f(t - f(q * 0.25));
  if (r > 0.125) { r = f(r - 0.25); q += 1; }
  const x = f(r * f(6.28318530717958648));
  const x2 = f(x * x);
  let ps = f(-1 / 39916800);
  for (const c of [1 / 362880, -1 / 5040, 1 / 120, -1 / 6, 1]) ps = f(f(ps * x2) + f(c));
  const s = f(x * ps);
  let pc = f(1 / 479001600);
  for (const c of [-1 / 3628800, 1 / 40320, -1 / 720, 1 / 24, -0.5]) pc = f(f(pc * x2) + f(c));
  const c = f(f(pc * x2) + 1);
  switch (q & 3) {
    case 0: return [s, c];
    case 1: return [c, -s];
    case 2: return [-s, -c];
    default: return [-c, s];
  }
}
function reference(seed: number, offset: number, i: number, normal: boolean, a: number, b: number): number {
  const r = philox(BigInt(offset + Math.floor(i / 4)), BigInt(seed));
  const lane = i & 3;
  if (!normal) return f(f(a) + f(f(f(b) - f(a)) * uniform01(r[lane])));
  const p = lane & ~1;
  const u1 = f(((r[p] >>> 8) + 1) * f(1 / 16777216));
  const u2 = uniform01(r[p + 1]);
  const rad = f(Math.sqrt(f(-2 * plog(u1))));
  const [sn, cs] = psincos(u2);
  const z = f(rad * (lane & 1 ? sn : cs));
  return f(f(a) + f(f(b) * z));
}

describe('random (Philox4x32-10)', () => {
  test('the CPU stream equals the documented stream bit for bit', async () => {
    const g = new mixt.Generator(1234567);
    const n = 257;
    const x = await mixt.randn([n], { generator: g, mean: 0.5, std: 2 }).toArray();
    const u = await mixt.rand([n], { generator: g, low: -1, high: 3 }).toArray();
    const offU = Math.ceil(n / 4);
    for (let i = 0; i < n; i++) {
      expect(x[i]).toBe(reference(1234567, 0, i, true, 0.5, 2));
      expect(u[i]).toBe(reference(1234567, offU, i, false, -1, 3));
    }
  });

  test('same seed, same numbers; the offset advances between fills', async () => {
    const a = await mixt.randn([100], { generator: new mixt.Generator(7) }).toArray();
    const b = await mixt.randn([100], { generator: new mixt.Generator(7) }).toArray();
    expect(a).toEqual(b);
    const g = new mixt.Generator(7);
    mixt.randn([100], { generator: g });
    expect(g.offset).toBe(25);
    const c = await mixt.randn([100], { generator: g }).toArray();
    expect(c).not.toEqual(a);
    const d = await mixt.randn([100], { generator: new mixt.Generator(8) }).toArray();
    expect(d).not.toEqual(a);
  });

  test('normal and uniform statistics', async () => {
    const n = 200000;
    const x = await mixt.randn([n], { generator: new mixt.Generator(1), dtype: 'f64' }).toArray();
    let s = 0, s2 = 0;
    for (const v of x) { s += v; s2 += v * v; }
    expect(Math.abs(s / n)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.02);
    const u = await mixt.rand([n], { generator: new mixt.Generator(2) }).toArray();
    let lo = 1, hi = 0, su = 0;
    for (const v of u) { lo = Math.min(lo, v); hi = Math.max(hi, v); su += v; }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(Math.abs(su / n - 0.5)).toBeLessThan(0.01);
  });

  test('every dtype draws the same stream (rounded to its precision)', async () => {
    const a = await mixt.randn([64], { generator: new mixt.Generator(3), dtype: 'f64' }).toArray();
    const b = await mixt.randn([64], { generator: new mixt.Generator(3), dtype: 'f32' }).toArray();
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  test('generator state round-trips (what checkpoints save)', async () => {
    const g = new mixt.Generator(11);
    mixt.rand([10], { generator: g });
    const st = g.state();
    const a = await mixt.rand([10], { generator: g }).toArray();
    const h = new mixt.Generator(0);
    h.setState(st);
    expect(await mixt.rand([10], { generator: h }).toArray()).toEqual(a);
  });

  test('bad arguments', () => {
    expect(() => new mixt.Generator(-1)).toThrow(RangeError);
    expect(() => mixt.randn([2], { std: -1 })).toThrow(/options.std/);
    expect(() => mixt.rand([2], { dtype: 'i32' })).toThrow(/a float dtype/);
    expect(() => mixt.rand([2], { low: 2, high: 1 })).toThrow(/options.high/);
  });
});
