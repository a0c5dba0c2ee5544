// AdamW with fp32 master weights and moments, decoupled weight decay on matrices only (norms,
// embeddings and routers excluded by rule), global-norm clipping without a host sync (the clip
// coefficient stays on the device), and the bf16 compute copy written by the same fused kernel.
import { Tensor } from '../core/tensor';
import { Parameter } from '../nn/parameter';
import { adamwStep, clipCoefficient, gradNormSquared, zeros } from '../ops';
import { nextTurn } from '../core/runtime';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clipNorm: number; // 0 disables clipping
}

export const ADAMW_DEFAULTS: AdamWOptions = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1.0 };

const PER_TURN = 128;

export class AdamW {
  readonly m = new Map<Parameter, Tensor>();
  readonly v = new Map<Parameter, Tensor>();
  step = 0;

  constructor(
    readonly params: Parameter[],
    readonly opts: AdamWOptions = ADAMW_DEFAULTS,
  ) {
    for (const p of params) {
      this.m.set(p, zeros(p.shape, { dtype: 'f32', device: p.value.device }));
      this.v.set(p, zeros(p.shape, { dtype: 'f32', device: p.value.device }));
    }
  }

  // Squared global gradient norm, on the device (f32 [1]).
  gradNormSquared(): Tensor {
    return gradNormSquared(this.params.map((p) => p.gradOrZeros()));
  }

  // One update with learning rate lr. normSquared: from gradNormSquared() (clipping uses it). The
  // updates are enqueued PER_TURN parameters at a time, each batch on a turn of the event loop of its
  // own (a deep model has thousands of parameters); resolves when all are enqueued.
  async apply(lr: number, normSquared: Tensor): Promise<void> {
    this.step++;
    const coef = this.opts.clipNorm > 0 ? clipCoefficient(normSquared, this.opts.clipNorm) : undefined;
    for (const [i, p] of this.params.entries()) {
      if (i > 0 && i % PER_TURN === 0) await nextTurn();
      adamwStep(p.value, p.gradOrZeros(), this.m.get(p)!, this.v.get(p)!, {
        lr,
        beta1: this.opts.beta1,
        beta2: this.opts.beta2,
        eps: this.opts.eps,
        weightDecay: p.decay ? this.opts.weightDecay : 0,
        step: this.step,
        gradScale: coef,
        computeCopy: p.computeCopy(),
      });
    }
    coef?.dispose();
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
