// mixt: train sparse multimodal transformers (MoT, MoD, MoE) from Node.js.
export { Tensor } from './core/tensor';
export { Device, devices, device, chooseDevice, defaultDevice, setDefaultDevice, cudaStatus } from './core/device';
export type { DeviceSpec, DeviceInfo, DeviceChoice } from './core/device';
export type { DType } from './core/dtype';
export { MixtError, DisposedError } from './core/errors';
export { Generator, manualSeed, defaultGenerator } from './core/random';
export { sync, memory, resetPeakMemory, buildInfo, memoryLimit, setMemoryLimit } from './core/runtime';
export type { MemoryBudget } from './core/runtime';
export * from './ops';
export * as ops from './ops';
