import * as mixt from '../lib';
import { TOL, expectClose, quantize, randn, values } from './helpers';
import { checkGradient, dot, f64, i32 } from './gradcheck';

interface Mask { causal: boolean; doc?: number[]; span?: number[]; pos?: number[] }

function visible(m: Mask, i: number, j: number): boolean {
  if (m.doc && m.doc[i] !== m.doc[j]) return false;
  if (!m.causal) return true;
  const pi = m.pos ? m.pos[i] : i, pj = m.pos ? m.pos[j] : j;
  return pj <= pi || (!!m.span && m.span[i] >= 0 && m.span[i] === m.span[j]);
}

function refAttention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, Hq: number, Hk: number, D: number, m: Mask) {
  const out = new Float64Array(T * Hq * D), lse = new Float64Array(Hq * T);
  const scale = 1 / Math.sqrt(D);
  for (let h = 0; h < Hq; h++) {
    const hk = Math.floor(h / (Hq / Hk));
    for (let i = 0; i < T; i++) {
      const s: number[] = [];
      for (let j = 0; j < T; j++) {
        if (!visible(m, i, j)) { s.push(-Infinity); continue; }
        let d = 0;
        for (let c = 0; c < D; c++) d += q[(i * Hq + h) * D + c] * k[(j * Hk + hk) * D + c];
        s.push(d * scale);
      }
      const mx = Math.max(...s);
      const p = s.map((x) => Math.exp(x - mx));
      const l = p.reduce((a, b) => a + b, 0);
      lse[h * T + i] = mx + Math.log(l);
      for (let c = 0; c < D; c++) {
        let a = 0;
        for (let j = 0; j < T; j++) a += p[j] * v[(j * Hk + hk) * D + c];
        out[(i * Hq + h) * D + c] = a / l;
      }
    }
  }
  return { out, lse };
}

const maskTensors = (m: Mask): mixt.AttentionMask => ({
  causal: m.causal,
  ...(m.doc ? { docIds: i32(m.doc) } : {}),
  ...(m.span ? { spanIds: i32(m.span) } : {}),
  ...(m.pos ? { positions: i32(m.pos) } : {}),
});

// 37 tokens: three documents; an image span inside the second; compacted positions variant
const T = 37;
const doc = Array.from({ length: T }, (_, i) => (i < 12 ? 0 : i < 30 ? 1 : 2));
const span = Array.from({ length: T }, (_, i) => (i >= 15 && i < 24 ? 7 : -1));
const pos = Array.from({ length: T }, (_, i) => 3 * i + (i % 2)); // strictly increasing, with gaps (MoD)
const MASKS: [string, Mask][] = [
  ['causal', { causal: true }],
  ['full', { causal: false }],
  ['documents', { causal: true, doc }],
  ['documents + image span', { causal: true, doc, span }],
  ['compacted positions', { causal: true, doc, pos }],
];

describe('attention against an explicit-softmax reference', () => {
  for (const [Hq, Hk, D] of [[2, 2, 8], [4, 2, 8], [4, 1, 16]]) {
    for (const [name, m] of MASKS) {
      test(`${name}, Hq=${Hq} Hkv=${Hk} D=${D}`, async () => {
        for (const dtype of ['f64', 'f32', 'bf16'] as mixt.DType[]) {
          const q = quantize(randn(T * Hq * D, 1), dtype), k = quantize(randn(T * Hk * D, 2), dtype), v = quantize(randn(T * Hk * D, 3), dtype);
          const ref = refAttention(q, k, v, T, Hq, Hk, D, m);
          const t = (x: Float64Array, h: number) => mixt.tensor(Array.from(x), [T, h, D], { dtype });
          const { out, lse } = mixt.attention(t(q, Hq), t(k, Hk), t(v, Hk), maskTensors(m));
          const tol = dtype === 'f32' ? { rtol: 1e-5, atol: 1e-5 } : TOL[dtype];
          expectClose(await values(out), ref.out, tol, `${name} out ${dtype}`);
          expectClose(await values(lse), ref.lse, dtype === 'bf16' ? { rtol: 1e-5, atol: 1e-5 } : tol, `${name} lse ${dtype}`);
        }
      });
    }
  }

  for (const [name, m] of MASKS) {
    test(`gradients pass a finite-difference check: ${name}, GQA`, async () => {
      const Hq = 4, Hk = 2, D = 6, n = 19;
      const mm: Mask = { causal: m.causal, doc: m.doc?.slice(10, 10 + n), span: m.span?.slice(10, 10 + n), pos: m.pos?.slice(10, 10 + n) };
      const q = randn(n * Hq * D, 4), k = randn(n * Hk * D, 5), v = randn(n * Hk * D, 6), r = randn(n * Hq * D, 7);
      const run = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => mixt.attention(f64(qq, [n, Hq, D]), f64(kk, [n, Hk, D]), f64(vv, [n, Hk, D]), maskTensors(mm));
      const fw = run(q, k, v);
      const g = mixt.attentionBackward(f64(q, [n, Hq, D]), f64(k, [n, Hk, D]), f64(v, [n, Hk, D]), fw.out, f64(r, [n, Hq, D]), fw.lse, maskTensors(mm));
      const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => dot(run(qq, kk, vv).out, r);
      expect(await checkGradient(q, await values(g.dq), (x) => loss(x, k, v))).toBeLessThan(1e-6);
      expect(await checkGradient(k, await values(g.dk), (x) => loss(q, x, v))).toBeLessThan(1e-6);
      expect(await checkGradient(v, await values(g.dv), (x) => loss(q, k, x))).toBeLessThan(1e-6);
    });
  }
});

describe('mask properties', () => {
  const Hq = 2, D = 4;
  const base = () => ({ q: randn(T * Hq * D, 11), k: randn(T * Hq * D, 12), v: randn(T * Hq * D, 13) });
  async function outputs(x: { q: Float64Array; k: Float64Array; v: Float64Array }, m: Mask) {
    return values(mixt.attention(f64(x.q, [T, Hq, D]), f64(x.k, [T, Hq, D]), f64(x.v, [T, Hq, D]), maskTensors(m)).out);
  }
  const rowOf = (o: Float64Array, i: number) => Array.from(o.subarray(i * Hq * D, (i + 1) * Hq * D));
  const perturbToken = (x: { q: Float64Array; k: Float64Array; v: Float64Array }, j: number) => {
    const y = { q: x.q.slice(), k: x.k.slice(), v: x.v.slice() };
    for (let c = 0; c < Hq * D; c++) { y.k[j * Hq * D + c] += 1; y.v[j * Hq * D + c] -= 2; }
    return y;
  };

  test('a token never sees another document', async () => {
    const x = base(), m: Mask = { causal: true, doc };
    const a = await outputs(x, m), b = await outputs(perturbToken(x, 5), m); // doc 0 token changes
    for (let i = 12; i < T; i++) expect(rowOf(b, i)).toEqual(rowOf(a, i));
    expect(rowOf(b, 7)).not.toEqual(rowOf(a, 7));
  });

  test('inside an image span a token sees later tokens of its span, but not later tokens outside it', async () => {
    const x = base(), m: Mask = { causal: true, doc, span };
    const a = await outputs(x, m);
    const later = await outputs(perturbToken(x, 22), m); // in span 7, after token 16
    expect(rowOf(later, 16)).not.toEqual(rowOf(a, 16));
    const outside = await outputs(perturbToken(x, 26), m); // doc 1, after the span, not in it
    expect(rowOf(outside, 16)).toEqual(rowOf(a, 16));
    expect(rowOf(outside, 13)).toEqual(rowOf(a, 13)); // a text token before the span: plain causal
  });
});

describe('RoPE and segment ids', () => {
  test('rope matches the reference, inverse undoes it, and its backward is the inverse', async () => {
    const Tn = 9, H = 3, D = 8;
    const x = randn(Tn * H * D, 21), p = Array.from({ length: Tn }, (_, i) => 5 * i + 1);
    const y = await values(mixt.rope(f64(x, [Tn, H, D]), i32(p)));
    const ref = new Float64Array(x.length);
    for (let t = 0; t < Tn; t++) for (let h = 0; h < H; h++) for (let c = 0; c < D / 2; c++) {
      const a = p[t] * Math.pow(10000, (-2 * c) / D), o = (t * H + h) * D;
      ref[o + c] = x[o + c] * Math.cos(a) - x[o + c + D / 2] * Math.sin(a);
      ref[o + c + D / 2] = x[o + c] * Math.sin(a) + x[o + c + D / 2] * Math.cos(a);
    }
    expectClose(y, ref, TOL.f64, 'rope');
    const back = await values(mixt.rope(f64(y, [Tn, H, D]), i32(p), { inverse: true }));
    expectClose(back, x, TOL.f64, 'inverse');
    const r = randn(x.length, 22);
    const g = await values(mixt.rope(f64(r, [Tn, H, D]), i32(p), { inverse: true }));
    expect(await checkGradient(x, g, (xx) => dot(mixt.rope(f64(xx, [Tn, H, D]), i32(p)), r))).toBeLessThan(1e-7);
  });

  test('segment ids from cu_seqlens', async () => {
    expect(Array.from(await mixt.segmentIds(i32([0, 3, 3, 7]), 7).toArray())).toEqual([0, 0, 0, 2, 2, 2, 2]);
    await expect(mixt.segmentIds(i32([0, 3, 5]), 7).toArray()).rejects.toThrow(/cu_seqlens must start at 0 and end at the token count 7/);
  });

  test('bad arguments name the argument', () => {
    const q = mixt.zeros([4, 3, 8]);
    expect(() => mixt.attention(q, mixt.zeros([4, 2, 8]), mixt.zeros([4, 2, 8]), { causal: true })).toThrow(/a head count dividing 3/);
    expect(() => mixt.attention(q, q, q, { causal: true, docIds: mixt.zeros([4]) })).toThrow(/argument "mask.docIds" expected dtype i32/);
    expect(() => mixt.attention(q, q, q, undefined as unknown as mixt.AttentionMask)).toThrow(/argument "mask"/);
    expect(() => mixt.rope(mixt.zeros([4, 3, 7]), i32([0, 1, 2, 3]))).toThrow(/even head dim/);
  });
});
