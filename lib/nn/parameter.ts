// Parameters: fp32 master values (f64 on the CPU for gradient checks), a compute copy in the
// compute dtype (bf16 on CUDA; the master itself on the CPU), and a gradient in the compute dtype.
import { DType } from '../core/dtype';
import { Tensor } from '../core/tensor';
import { addScaled_, cast, copy_, zeros } from '../ops';

export type ParamKind = 'matrix' | 'norm' | 'embedding' | 'router';

export class Parameter {
  grad: Tensor | null = null;
  #compute: Tensor | null = null;

  constructor(
    readonly name: string,
    public value: Tensor,
    readonly kind: ParamKind,
    readonly computeDtype: DType = value.dtype,
    // Leading axis of parameters untied by group (modality or expert): its size; 0 when not grouped.
    readonly groups = 0,
  ) {
    value.name = name;
  }

  // Weight decay applies to matrices only (not norms, embeddings or routers), by rule.
  get decay(): boolean {
    return this.kind === 'matrix';
  }
  get shape(): readonly number[] {
    return this.value.shape;
  }

  // The tensor kernels read: the master itself, or its cached copy in the compute dtype.
  get compute(): Tensor {
    if (this.computeDtype === this.value.dtype) return this.value;
    if (!this.#compute) this.#compute = cast(this.value, this.computeDtype);
    return this.#compute;
  }
  // After the master changed outside the optimiser (load, init): refresh the compute copy.
  syncCompute(): void {
    if (this.#compute) cast(this.value, this.computeDtype, this.#compute);
  }
  // The optimiser writes the compute copy itself; this hands it over (created on first use).
  computeCopy(): Tensor | undefined {
    if (this.computeDtype === this.value.dtype) return undefined;
    return this.compute;
  }

  // grad += g (g is consumed: disposed, or adopted as the gradient when there is none).
  accumulate(g: Tensor): void {
    if (!this.grad) {
      this.grad = g;
      return;
    }
    addScaled_(this.grad, 1, g);
    g.dispose();
  }

  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  // The gradient, materialised as zeros when no backward reached this parameter.
  gradOrZeros(): Tensor {
    if (!this.grad) this.grad = zeros(this.shape, { dtype: this.computeDtype, device: this.value.device });
    return this.grad;
  }

  // Replaces the master values (same shape; any float dtype), refreshing the compute copy.
  load(values: Tensor): void {
    if (values.dtype === this.value.dtype) copy_(this.value, values);
    else cast(values, this.value.dtype, this.value);
    this.syncCompute();
  }

  dispose(): void {
    this.zeroGrad();
    this.#compute?.dispose();
    this.#compute = null;
    this.value.dispose();
  }
}
