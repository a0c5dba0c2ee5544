// `mixt/model`: model creation and loading, configs, presets and their arithmetic.
export { createModel, loadModel } from './model';
export type { MixtModel } from './model';
export type { CreateModelOptions, ParameterCounts } from './model';
export { BLOCK_KINDS, PRESETS, flopsPerToken, parameterCount, presetConfig, validateConfig } from '../model/config';
export type { BlockKind, ModalityConfig, ModelConfig, PresetName } from '../model/config';
