// Parameter initialisation from a seeded generator (reproducible on CPU and CUDA alike).
import { DType } from '../core/dtype';
import { Device } from '../core/device';
import { Generator } from '../core/random';
import { Tensor } from '../core/tensor';
import { full, randn } from '../ops';

export interface InitContext {
  generator: Generator;
  device: Device;
  masterDtype: DType; // f32 (f64 for gradient checks on the CPU)
}

export function normalInit(ctx: InitContext, shape: number[], std: number): Tensor {
  return randn(shape, { generator: ctx.generator, device: ctx.device, dtype: ctx.masterDtype, std });
}

export function constantInit(ctx: InitContext, shape: number[], value: number): Tensor {
  return full(shape, value, { device: ctx.device, dtype: ctx.masterDtype });
}
