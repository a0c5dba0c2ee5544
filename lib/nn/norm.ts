// Norms whose weights are chosen per token by modality: RMSNorm or LayerNorm, weight [M, d].
import { Tensor } from '../core/tensor';
import { layerNorm, layerNormBackward, rmsNorm, rmsNormBackward } from '../ops';
import { InitContext, constantInit } from './init';
import { Module, keep, release } from './module';
import { Parameter } from './parameter';

export type NormKind = 'rms' | 'layer';

interface Saved {
  x: Tensor;
  ids: Tensor | null;
  mean: Tensor | null;
  rstd: Tensor;
}

export class ModalityNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  #saved: Saved | null = null;

  constructor(
    readonly name: string,
    readonly kind: NormKind,
    readonly groups: number,
    readonly dim: number,
    init: InitContext,
    computeDtype: Tensor['dtype'],
    readonly eps = kind === 'rms' ? 1e-6 : 1e-5,
  ) {
    super();
    this.weight = new Parameter(`${name}.weight`, constantInit(init, [groups, dim], 1), 'norm', computeDtype, groups);
    this.bias = kind === 'layer' ? new Parameter(`${name}.bias`, constantInit(init, [groups, dim], 0), 'norm', computeDtype, groups) : null;
  }

  parameters(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  // x: [N, dim] rows, ids: i32 [N] group per row (null when groups == 1).
  forward(x: Tensor, ids: Tensor | null): Tensor {
    this.clearSaved();
    const gids = this.groups === 1 ? null : ids;
    if (this.kind === 'rms') {
      const { y, rstd } = rmsNorm(x, this.weight.compute, gids, { eps: this.eps });
      this.#saved = { x: keep(x), ids: gids ? keep(gids) : null, mean: null, rstd };
      return y;
    }
    const { y, mean, rstd } = layerNorm(x, this.weight.compute, this.bias!.compute, gids, { eps: this.eps });
    this.#saved = { x: keep(x), ids: gids ? keep(gids) : null, mean, rstd };
    return y;
  }

  backward(dy: Tensor): Tensor {
    const s = this.#saved;
    if (!s) throw new Error(`${this.name}: backward without a forward`);
    let dx: Tensor;
    if (this.kind === 'rms') {
      const r = rmsNormBackward(dy, s.x, this.weight.compute, s.ids, s.rstd);
      this.weight.accumulate(r.dweight);
      dx = r.dx;
    } else {
      const r = layerNormBackward(dy, s.x, this.weight.compute, s.ids, s.mean!, s.rstd);
      this.weight.accumulate(r.dweight);
      this.bias!.accumulate(r.dbias);
      dx = r.dx;
    }
    this.clearSaved();
    return dx;
  }

  clearSaved(): void {
    this.#saved = release(this.#saved);
  }
}
