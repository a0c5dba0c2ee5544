// SwiGLU feed-forward untied by group: W_gate|up [G, 2F, d] (one fused grouped GEMM), W_down [G, d, F].
import { Tensor } from '../core/tensor';
import { Batch } from './batch';
import { swiglu, swigluBackward } from '../ops';
import { InitContext } from './init';
import { GroupedLinear } from './linear';
import { Module, keep, release } from './module';
import { Parameter } from './parameter';

// The feed-forward sub-layer of a block: grouped rows in, grouped rows out.
export interface FeedForward extends Module {
  forward(x: Tensor, batch: Batch): Tensor;
  backward(dy: Tensor): Tensor;
}

export class GroupedSwiGLU extends Module implements FeedForward {
  readonly wGateUp: GroupedLinear;
  readonly wDown: GroupedLinear;
  #saved: { gateUp: Tensor } | null = null;

  constructor(
    readonly name: string,
    readonly groups: number,
    dModel: number,
    readonly hidden: number,
    init: InitContext,
    computeDtype: Tensor['dtype'],
    outStd: number,
  ) {
    super();
    this.wGateUp = new GroupedLinear(`${name}.w_gate_up`, groups, dModel, 2 * hidden, init, computeDtype);
    this.wDown = new GroupedLinear(`${name}.w_down`, groups, hidden, dModel, init, computeDtype, outStd);
  }

  parameters(): Parameter[] {
    return [...this.wGateUp.parameters(), ...this.wDown.parameters()];
  }

  // x: grouped rows [N, d]; returns [N, d]. `offsets` [groups + 1]: the row groups of x when they are
  // not the batch's own (a subset of its rows).
  forward(x: Tensor, batch: Batch, offsets: Tensor = batch.offsets(this.groups)): Tensor {
    this.clearSaved();
    const gateUp = this.wGateUp.forward(x, offsets);
    const h = swiglu(gateUp);
    const y = this.wDown.forward(h, offsets);
    h.dispose();
    this.#saved = { gateUp: keep(gateUp) };
    gateUp.dispose();
    return y;
  }

  backward(dy: Tensor): Tensor {
    const s = this.#saved;
    if (!s) throw new Error(`${this.name}: backward without a forward`);
    const dh = this.wDown.backward(dy);
    const dgu = swigluBackward(dh, s.gateUp);
    dh.dispose();
    this.#saved = release(this.#saved);
    const dx = this.wGateUp.backward(dgu);
    dgu.dispose();
    return dx;
  }

  clearSaved(): void {
    this.#saved = release(this.#saved);
    this.wGateUp.clearSaved();
    this.wDown.clearSaved();
  }
}
