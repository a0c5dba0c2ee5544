// A linear map untied by group (modality or expert): weight [G, out, in], y[r] = x[r] . W[g(r)]^T over
// rows grouped contiguously by the routing plan's offsets: one grouped-GEMM launch for all groups.
import { Tensor } from '../core/tensor';
import { groupedMatmul, groupedMatmulDW, groupedMatmulDX } from '../ops';
import { InitContext, normalInit } from './init';
import { Module, keep, release } from './module';
import { Parameter } from './parameter';

interface Saved {
  x: Tensor;
  offsets: Tensor;
}

export class GroupedLinear extends Module {
  readonly weight: Parameter;
  #saved: Saved | null = null;

  constructor(
    readonly name: string,
    readonly groups: number,
    readonly inFeatures: number,
    readonly outFeatures: number,
    init: InitContext,
    computeDtype: Tensor['dtype'],
    std = 0.02,
  ) {
    super();
    this.weight = new Parameter(`${name}`, normalInit(init, [groups, outFeatures, inFeatures], std), 'matrix', computeDtype, groups);
  }

  parameters(): Parameter[] {
    return [this.weight];
  }

  // x: [N, in] in grouped order; offsets: i32 [G + 1].
  forward(x: Tensor, offsets: Tensor): Tensor {
    this.clearSaved();
    const y = groupedMatmul(x, this.weight.compute, offsets);
    this.#saved = { x: keep(x), offsets: keep(offsets) };
    return y;
  }

  backward(dy: Tensor): Tensor {
    const s = this.#saved;
    if (!s) throw new Error(`${this.name}: backward without a forward`);
    const dw = this.weight.grad ? groupedMatmulDW(dy, s.x, s.offsets, { out: this.weight.grad, beta: 1 }) : groupedMatmulDW(dy, s.x, s.offsets);
    if (!this.weight.grad) this.weight.grad = dw;
    const dx = groupedMatmulDX(dy, this.weight.compute, s.offsets);
    this.clearSaved();
    return dx;
  }

  clearSaved(): void {
    this.#saved = release(this.#saved);
  }
}
