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

// The library: models, training, data and generation (also as the subpaths mixt/model, mixt/train, mixt/data).
export { createModel, loadModel } from './api/model';
export type { MixtModel } from './api/model';
export type { CreateModelOptions, ParameterCounts } from './api/model';
export { train } from './api/train';
export type { TrainRun } from './api/train';
export type { TrainRunOptions, TrainSummary, CheckpointEvent, StepReport, ModalityReport, RoutingReport } from './api/train';
export type { ModelConfig, BlockKind, PresetName, ModalityConfig } from './model/config';
export { generate, score, generateImage } from './api/generate';
export type { GenerateOptions, ScoreReport, SequenceScore, ImageOptions } from './api/generate';
export * as data from './api/data';
