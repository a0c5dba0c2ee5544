// Finite-difference gradient checks in float64 on the CPU backend.
import * as mixt from '../lib';
import { rng } from './helpers';

// Central differences of a scalar function of a host array at `probes` random coordinates,
// compared with the analytic gradient. Returns the worst relative error.
export async function checkGradient(
  x: Float64Array,
  grad: ArrayLike<number>,
  f: (x: Float64Array) => Promise<number>,
  opts: { probes?: number; eps?: number; seed?: number; floor?: number } = {},
): Promise<number> {
  const r = rng(opts.seed ?? 7);
  const eps = opts.eps ?? 1e-6;
  let worst = 0;
  const probes = Math.min(opts.probes ?? 12, x.length);
  for (let p = 0; p < probes; p++) {
    const i = Math.floor(r() * x.length);
    const save = x[i];
    x[i] = save + eps;
    const up = await f(x);
    x[i] = save - eps;
    const down = await f(x);
    x[i] = save;
    const numeric = (up - down) / (2 * eps);
    // relative error, with an absolute floor under which differences are rounding noise
    const err = Math.abs(numeric - grad[i]) / Math.max(opts.floor ?? 1e-6, Math.abs(numeric) + Math.abs(grad[i]));
    worst = Math.max(worst, err);
  }
  return worst;
}

// sum(t * r) on the host, for a fixed random r: a scalar loss whose gradient w.r.t. t is r.
export async function dot(t: mixt.Tensor, r: ArrayLike<number>): Promise<number> {
  const v = await t.toArray();
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * r[i];
  return s;
}

export const f64 = (data: ArrayLike<number>, shape: number[]) => mixt.tensor(Float64Array.from(data), shape, { dtype: 'f64' });
export const i32 = (data: ArrayLike<number>) => mixt.tensor(Int32Array.from(data), [data.length], { dtype: 'i32' });

// Each parameter's gradient (already accumulated by a backward of `loss`) against central
// differences of `loss()` under probes of that parameter; throws naming the worst parameter.
export async function checkParameterGradients(
  params: { name: string; shape: readonly number[]; value: mixt.Tensor; grad: mixt.Tensor | null; load(t: mixt.Tensor): void }[],
  loss: () => Promise<number>,
  opts: { probes?: number; eps?: number; floor?: number; tolerance?: number } = {},
): Promise<void> {
  for (const p of params) {
    const w = Float64Array.from(await p.value.toArray());
    const g = await p.grad!.toArray();
    const err = await checkGradient(w.slice(), g, async (ww) => {
      p.load(f64(ww, [...p.shape]));
      const v = await loss();
      p.load(f64(w, [...p.shape]));
      return v;
    }, opts);
    if (err > (opts.tolerance ?? 1e-5)) throw new Error(`${p.name}: relative error ${err}`);
  }
}
