// Model configuration (JSON) and presets. A model is a shared token embedding, a stack of blocks
// chosen per layer by `blocks`, a per-modality final norm and an LM head (tied or not).
import { rangeError, typeError } from '../core/errors';

export type BlockKind = 'dense' | 'mot';
export const BLOCK_KINDS: readonly BlockKind[] = ['dense', 'mot'];

export interface ModalityConfig {
  name: string;
  range: [number, number]; // token ids [lo, hi) in the shared vocabulary
}

export interface ModelConfig {
  vocabSize: number;
  modalities: ModalityConfig[];
  dModel: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffnHidden: number;
  normKind: 'rms' | 'layer';
  placement: 'pre' | 'post';
  qkNorm: boolean;
  ropeTheta: number;
  maxSeqLen: number;
  tieEmbeddings: boolean;
  blocks: BlockKind[]; // one per layer
}

export type PresetName = 'tiny' | 'small' | 'medium';

interface Shape {
  dModel: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffnHidden: number;
  maxSeqLen: number;
}

// tiny: trains on 2 CPU cores in a couple of minutes. small (~100M) and medium (~350M): the GPU.
// (Parameter counts are per modality path: a MoT model holds M untied copies of the blocks.)
export const PRESETS: Record<PresetName, Shape> = {
  tiny: { dModel: 96, layers: 3, heads: 4, kvHeads: 2, ffnHidden: 256, maxSeqLen: 256 },
  small: { dModel: 768, layers: 12, heads: 12, kvHeads: 4, ffnHidden: 2048, maxSeqLen: 1024 },
  medium: { dModel: 1024, layers: 24, heads: 16, kvHeads: 8, ffnHidden: 2816, maxSeqLen: 2048 },
};

export function presetConfig(
  preset: PresetName,
  vocab: { size: number; modalities: ModalityConfig[] },
  blocks: BlockKind | BlockKind[] = 'mot',
  overrides: Partial<ModelConfig> = {},
): ModelConfig {
  const p = PRESETS[preset];
  if (!p) throw typeError('presetConfig', 'preset', `one of ${Object.keys(PRESETS).join(', ')}`, preset);
  const cfg: ModelConfig = {
    vocabSize: vocab.size,
    modalities: vocab.modalities,
    ...p,
    headDim: p.dModel / p.heads,
    normKind: 'rms',
    placement: 'pre',
    qkNorm: true,
    ropeTheta: 10000,
    tieEmbeddings: false,
    blocks: Array.isArray(blocks) ? blocks : new Array(p.layers).fill(blocks),
    ...overrides,
  };
  if (overrides.layers !== undefined && !overrides.blocks && !Array.isArray(blocks)) cfg.blocks = new Array(cfg.layers).fill(blocks);
  if (overrides.dModel !== undefined && overrides.headDim === undefined) cfg.headDim = cfg.dModel / cfg.heads;
  return validateConfig(cfg);
}

function int(fn: string, name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw typeError(fn, name, 'an integer', v);
  if (v < min) throw rangeError(fn, name, `an integer >= ${min}`, v);
  return v;
}

// Checks a config (from JSON or code) and says what is wrong, by field.
export function validateConfig(c: ModelConfig): ModelConfig {
  const fn = 'ModelConfig';
  if (typeof c !== 'object' || c === null) throw typeError(fn, 'config', 'an object', c);
  int(fn, 'vocabSize', c.vocabSize, 2);
  for (const k of ['dModel', 'layers', 'heads', 'kvHeads', 'headDim', 'ffnHidden', 'maxSeqLen'] as const) int(fn, k, c[k], 1);
  if (c.heads % c.kvHeads !== 0) throw rangeError(fn, 'kvHeads', `a divisor of heads (${c.heads})`, c.kvHeads);
  if (c.headDim % 2 !== 0) throw rangeError(fn, 'headDim', 'an even number (RoPE rotates pairs)', c.headDim);
  if (!Array.isArray(c.modalities) || c.modalities.length < 1 || c.modalities.length > 8) {
    throw rangeError(fn, 'modalities', '1 to 8 modalities', c.modalities);
  }
  for (const m of c.modalities) {
    const [lo, hi] = m.range ?? [];
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && lo < hi && hi <= c.vocabSize)) {
      throw rangeError(fn, `modalities.${m.name}.range`, `[lo, hi) inside [0, ${c.vocabSize})`, m.range);
    }
  }
  if (c.normKind !== 'rms' && c.normKind !== 'layer') throw typeError(fn, 'normKind', "'rms' or 'layer'", c.normKind);
  if (c.placement !== 'pre' && c.placement !== 'post') throw typeError(fn, 'placement', "'pre' or 'post'", c.placement);
  if (!Array.isArray(c.blocks) || c.blocks.length !== c.layers) throw rangeError(fn, 'blocks', `one block kind per layer (${c.layers})`, c.blocks);
  for (const b of c.blocks) if (!BLOCK_KINDS.includes(b)) throw typeError(fn, 'blocks', `kinds from ${BLOCK_KINDS.join(', ')}`, b);
  return c;
}

// FLOPs of one training step (forward + backward = 3x forward) per token, counting matrix work
// only (the convention of MFU): 6 x active parameters + attention.
export function flopsPerToken(c: ModelConfig, seqLen: number, causal = true): number {
  const d = c.dModel, hd = c.headDim;
  const attnProj = d * (c.heads * hd) * 2 + d * (c.kvHeads * hd) * 2;
  const ffn = 3 * d * c.ffnHidden;
  const perLayer = 2 * (attnProj + ffn) + 2 * 2 * seqLen * c.heads * hd * (causal ? 0.5 : 1);
  const head = 2 * d * c.vocabSize;
  return 3 * (c.layers * perLayer + head);
}

// Parameters: total, and active per token (one modality path).
export function parameterCount(c: ModelConfig): { total: number; activePerToken: number } {
  const d = c.dModel, hd = c.headDim, M = c.modalities.length;
  const block = d * c.heads * hd * 2 + d * c.kvHeads * hd * 2 + 3 * d * c.ffnHidden + 2 * d + (c.qkNorm ? 2 * hd : 0);
  let total = c.vocabSize * d * (c.tieEmbeddings ? 1 : 2) + M * d;
  for (const b of c.blocks) total += block * (b === 'mot' ? M : 1);
  return { total, activePerToken: c.vocabSize * d * (c.tieEmbeddings ? 1 : 2) + d + c.layers * block };
}
