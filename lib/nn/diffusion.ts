// The Transfusion setting's continuous image path: image patches enter through a linear patch
// projection plus a timestep embedding (added to the token embedding at their positions) and leave
// through a linear head that predicts the noise, v or the clean patches (the model's config says
// which; see Model.noisyInputs), trained with lambda * MSE beside the language-model loss.
import { Tensor } from '../core/tensor';
import { cast, gatherRows, matmul, mean, scale, scatterRows, square, sub } from '../ops';
import { InitContext, normalInit } from './init';
import { Module, keep, release } from './module';
import { Parameter } from './parameter';

export const TIMESTEP_FEATURES = 32; // sinusoidal features of the timestep (16 frequencies, sin and cos)

// Cosine schedule (Nichol & Dhariwal): alpha-bar(t) = f(t) / f(0), f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2).
export function alphaBar(t: number, steps: number, s = 0.008): number {
  const f = (x: number) => Math.cos(((x / steps + s) / (1 + s)) * (Math.PI / 2)) ** 2;
  return Math.min(1, Math.max(1e-8, f(t) / f(0)));
}

// [P, 32] sinusoidal features of each patch's timestep.
export function timestepFeatures(t: ArrayLike<number>, steps: number): Float32Array {
  const half = TIMESTEP_FEATURES / 2;
  const out = new Float32Array(t.length * TIMESTEP_FEATURES);
  for (let i = 0; i < t.length; i++)
    for (let f = 0; f < half; f++) {
      const freq = Math.exp((-Math.log(10000) * f) / half);
      const a = (t[i] / steps) * 1000 * freq;
      out[i * TIMESTEP_FEATURES + f] = Math.sin(a);
      out[i * TIMESTEP_FEATURES + half + f] = Math.cos(a);
    }
  return out;
}

interface Saved {
  noisy: Tensor; // x_t patches [P, pd]
  tfeat: Tensor; // [P, 32]
  pos: Tensor; // positions of the patches in the batch (original order) [P]
  hImg: Tensor | null; // final hidden at the patches [P, d]
  epsHat: Tensor | null;
  eps: Tensor | null;
}

export class PatchDiffusion extends Module {
  readonly wIn: Parameter;
  readonly wTime: Parameter;
  readonly wOut: Parameter;
  #saved: Saved | null = null;

  constructor(readonly name: string, readonly dModel: number, readonly patchDim: number, readonly lambda: number, init: InitContext, computeDtype: Tensor['dtype']) {
    super();
    this.wIn = new Parameter(`${name}.patch_in`, normalInit(init, [dModel, patchDim], 0.02), 'matrix', computeDtype);
    this.wTime = new Parameter(`${name}.time_in`, normalInit(init, [dModel, TIMESTEP_FEATURES], 0.02), 'matrix', computeDtype);
    this.wOut = new Parameter(`${name}.patch_out`, normalInit(init, [patchDim, dModel], 0.02), 'matrix', computeDtype);
  }

  parameters(): Parameter[] {
    return [this.wIn, this.wTime, this.wOut];
  }

  // x (original order, [T, d]) += the projected patches and timestep features at their positions.
  embed(x: Tensor, noisy: Tensor, tfeat: Tensor, pos: Tensor): void {
    this.clearSaved();
    const a = matmul(noisy, this.wIn.compute, { transB: true }); // [P, d]
    matmul(tfeat, this.wTime.compute, { transB: true, out: a, beta: 1 });
    scatterRows(a, pos, x.shape[0], { accumulate: true, out: x });
    a.dispose();
    this.#saved = { noisy: keep(noisy), tfeat: keep(tfeat), pos: keep(pos), hImg: null, epsHat: null, eps: null };
  }

  // The predicted noise at the patches, from the final hidden states (original order).
  predict(h: Tensor): Tensor {
    const s = this.#saved!;
    const hImg = gatherRows(h, s.pos);
    const epsHat = matmul(hImg, this.wOut.compute, { transB: true }); // [P, pd]
    s.hImg = hImg;
    s.epsHat = keep(epsHat);
    return epsHat;
  }

  // MSE between the prediction and the true noise (a device scalar [1]); remembers eps for backward.
  mse(epsHat: Tensor, eps: Tensor): Tensor {
    this.#saved!.eps = keep(eps);
    const d = sub(epsHat, eps);
    const sq = square(d);
    const sqf = sq.dtype === 'bf16' ? cast(sq, 'f32') : sq;
    const m = mean(sqf);
    const out = m.reshape([1]);
    for (const t of new Set([d, sq, sqf, m])) t.dispose();
    return out;
  }

  // Backward of lambda * MSE * weight: returns the gradient at the hidden states (original order,
  // [T, d], zeros outside the patches) and accumulates wOut's gradient.
  backwardHead(T: number, weight: number): Tensor {
    const s = this.#saved!;
    const n = s.eps!.numel;
    const d = sub(s.epsHat!, s.eps!);
    const dEps = scale(d, (this.lambda * weight * 2) / n, 0, d); // [P, pd]
    this.wOut.accumulate(matmul(dEps, s.hImg!, { transA: true })); // [pd, d]
    const dh = matmul(dEps, this.wOut.compute); // [P, d]
    dEps.dispose();
    const out = scatterRows(dh, s.pos, T);
    dh.dispose();
    return out;
  }

  // Backward of embed(): the input gradient dx (original order) at the patches.
  backwardEmbed(dx: Tensor): void {
    const s = this.#saved!;
    const dImg = gatherRows(dx, s.pos); // [P, d]
    this.wIn.accumulate(matmul(dImg, s.noisy, { transA: true })); // [d, pd]
    this.wTime.accumulate(matmul(dImg, s.tfeat, { transA: true })); // [d, 32]
    dImg.dispose();
    this.clearSaved();
  }

  clearSaved(): void {
    this.#saved = release(this.#saved);
  }
}
