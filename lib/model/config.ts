// Model configuration (JSON) and presets. A model is a shared token embedding, a stack of blocks
// chosen per layer by `blocks`, a final norm (per modality when some block unties weights by
// modality, else shared) and an LM head (tied or not).
import { rangeError, typeError } from '../core/errors';

import { MOD_DEFAULTS, ModConfig } from '../nn/mod';
import { MOE_DEFAULTS, MoeConfig } from '../nn/moe';

// dense: weights shared by all modalities; mot: every non-embedding weight untied by modality;
// mod: Mixture-of-Depths routing around a MoT block; moe: shared attention, an expert FFN;
// mode-staged: MoD around a moe block; mode-integrated: a moe block with a no-op expert;
// mot+moe: a MoT block whose FFN for one modality (moeModality) is experts.
export type BlockKind = 'dense' | 'mot' | 'mod' | 'moe' | 'mode-staged' | 'mode-integrated' | 'mot+moe';
export const BLOCK_KINDS: readonly BlockKind[] = ['dense', 'mot', 'mod', 'moe', 'mode-staged', 'mode-integrated', 'mot+moe'];

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
  mod?: Partial<ModConfig>; // routing settings of mod / mode-staged blocks
  moe?: Partial<MoeConfig>; // expert settings of moe / mode-* / mot+moe blocks
  moeModality?: string; // the modality whose FFN is experts in mot+moe blocks (default: the first)
  // the final norm: untied by modality, or one shared by all (default: untied exactly when some block
  // unties weights by modality, so a `dense` model shares every weight)
  finalNorm?: 'modality' | 'shared';
  // the Transfusion setting: continuous image patches with a diffusion loss. The network predicts
  // `prediction`: the noise ('eps', the default of older checkpoints), v = sqrt(abar) eps - sqrt(1 - abar) x0,
  // or the clean picture x0. Training draws each picture's timestep as floor(timesteps * u^(1 / timestepPower)),
  // u uniform: 1 (older checkpoints) is uniform, 2 a density rising linearly with the noise level.
  transfusion?: { patchDim: number; lambda: number; timesteps: number; prediction?: DiffusionPrediction; timestepPower?: number };
  // a learned embedding of each image token's index inside its picture (a run of tokens of this
  // modality), for the first `size` tokens of a picture
  imagePositions?: { modality: string; size: number };
  // The codec of user data (text tokenizer, image codebook; see lib/train/data/codec.ts), carried so a
  // checkpoint can be prompted with text and pictures wherever it is loaded. Opaque to the model.
  codec?: object;
}

// Block kinds with weights untied by modality.
const MODALITY_UNTIED: readonly BlockKind[] = ['mot', 'mod', 'mot+moe'];

// Weight groups of the final norm: one per modality, or 1 when shared.
export function finalNormGroups(c: ModelConfig): number {
  const untied = c.finalNorm ? c.finalNorm === 'modality' : c.blocks.some((b) => MODALITY_UNTIED.includes(b));
  return untied ? c.modalities.length : 1;
}

// Whether some block routes tokens around itself (Mixture-of-Depths).
export function routesDepthIn(c: Pick<ModelConfig, 'blocks'>): boolean {
  return c.blocks.some((b) => b === 'mod' || b === 'mode-staged');
}

// The config with the defaults this version resolves written out (the final norm's layout, the
// Mixture-of-Depths gate), so that a saved model keeps meaning what it was trained as when a
// default changes. A config without `finalNorm` was written before these were explicit.
export function explicitConfig(c: ModelConfig): ModelConfig {
  const routesDepth = routesDepthIn(c);
  return {
    ...c,
    finalNorm: finalNormGroups(c) > 1 ? 'modality' : 'shared',
    ...(routesDepth ? { mod: { ...(c.mod ?? {}), gate: modSettings(c).gate, capacityBy: modSettings(c).capacityBy } } : {}),
  };
}

export const DIFFUSION_PREDICTIONS = ['eps', 'v', 'x0'] as const;
export type DiffusionPrediction = (typeof DIFFUSION_PREDICTIONS)[number];

// The Transfusion settings `mixt train --objective transfusion` uses (besides the patch size): the
// network predicts the clean picture, and training draws more high-noise levels than low ones, where
// the caption alone says what to draw (see noisyInputs in model.ts for why not eps or v).
export const TRANSFUSION_DEFAULTS = { lambda: 5, timesteps: 1000, prediction: 'x0' as DiffusionPrediction, timestepPower: 2 };

export function modSettings(c: ModelConfig): ModConfig {
  return { ...MOD_DEFAULTS, ...(c.mod ?? {}) };
}

export function moeSettings(c: ModelConfig): MoeConfig {
  return { ...MOE_DEFAULTS, hidden: c.ffnHidden, ...(c.moe ?? {}) };
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
  const mod = modSettings(c), moe = moeSettings(c);
  if (!(mod.capacity > 0 && mod.capacity <= 1)) throw rangeError(fn, 'mod.capacity', 'a fraction in (0, 1]', mod.capacity);
  if (mod.capacityBy !== 'sequence' && mod.capacityBy !== 'modality') throw typeError(fn, 'mod.capacityBy', "'sequence' or 'modality'", mod.capacityBy);
  if (!['raw', 'sigmoid', 'one'].includes(mod.gate)) throw typeError(fn, 'mod.gate', "'raw', 'sigmoid' or 'one'", mod.gate);
  if (!['bce', 'predictor', 'none'].includes(mod.aux)) throw typeError(fn, 'mod.aux', "'bce', 'predictor' or 'none'", mod.aux);
  int(fn, 'moe.experts', moe.experts, 1);
  int(fn, 'moe.k', moe.k, 1);
  if (moe.choice === 'token' && moe.k > moe.experts + (moe.noop ? 1 : 0)) throw rangeError(fn, 'moe.k', `at most the number of experts (${moe.experts})`, moe.k);
  if (moe.choice !== 'token' && moe.choice !== 'expert') throw typeError(fn, 'moe.choice', "'token' or 'expert'", moe.choice);
  if (moe.choice === 'expert' && !(moe.capacityFactor > 0)) throw rangeError(fn, 'moe.capacityFactor', 'a positive capacity factor for expert choice', moe.capacityFactor);
  if (c.finalNorm !== undefined && c.finalNorm !== 'modality' && c.finalNorm !== 'shared') throw typeError(fn, 'finalNorm', "'modality' or 'shared'", c.finalNorm);
  if (c.transfusion?.prediction !== undefined && !DIFFUSION_PREDICTIONS.includes(c.transfusion.prediction)) {
    throw typeError(fn, 'transfusion.prediction', "'eps', 'v' or 'x0'", c.transfusion.prediction);
  }
  const power = c.transfusion?.timestepPower;
  if (power !== undefined && !(typeof power === 'number' && power > 0 && Number.isFinite(power))) {
    throw rangeError(fn, 'transfusion.timestepPower', 'a positive finite number', power);
  }
  if (c.imagePositions !== undefined) {
    if (!c.modalities.some((m) => m.name === c.imagePositions!.modality)) {
      throw rangeError(fn, 'imagePositions.modality', `one of ${c.modalities.map((m) => m.name).join(', ')}`, c.imagePositions.modality);
    }
    int(fn, 'imagePositions.size', c.imagePositions.size, 1);
  }
  if (c.moeModality !== undefined && !c.modalities.some((m) => m.name === c.moeModality)) {
    throw rangeError(fn, 'moeModality', `one of ${c.modalities.map((m) => m.name).join(', ')}`, c.moeModality);
  }
  return c;
}

// FLOPs of one training step (forward + backward = 3x forward) per token, counting matrix work
// only (the convention of MFU): 6 x active parameters + attention. A Mixture-of-Depths layer
// (mod, mode-staged) costs its router on every token and its block on the chosen fraction only
// (attention among the chosen); an expert FFN costs k experts and the router.
export function flopsPerToken(c: ModelConfig, seqLen: number, causal = true): number {
  const d = c.dModel, hd = c.headDim;
  const attnProj = d * (c.heads * hd) * 2 + d * (c.kvHeads * hd) * 2;
  const moe = moeSettings(c), mod = modSettings(c);
  const dense = 3 * d * c.ffnHidden;
  const experts = (moe.choice === 'token' ? moe.k : moe.capacityFactor * moe.k) * 3 * d * moe.hidden + d * (moe.experts + (moe.noop ? 1 : 0));
  const block = (ffn: number, len: number) => 2 * (attnProj + ffn) + 2 * 2 * len * c.heads * hd * (causal ? 0.5 : 1);
  const chosen = Math.min(seqLen, Math.max(1, Math.ceil(mod.capacity * seqLen)));
  const routed = (ffn: number) => (chosen / seqLen) * block(ffn, chosen) + 2 * d;
  const layer = (b: BlockKind): number => {
    switch (b) {
      case 'mod': return routed(dense);
      case 'mode-staged': return routed(experts);
      case 'moe':
      case 'mode-integrated': return block(experts, seqLen);
      default: return block(dense, seqLen); // dense, mot, and mot+moe (counted as the dense FFN)
    }
  };
  const head = 2 * d * c.vocabSize;
  return 3 * (c.blocks.reduce((a, b) => a + layer(b), 0) + head);
}

// Parameters: total, and active per token (one modality path).
export function parameterCount(c: ModelConfig): { total: number; activePerToken: number } {
  const d = c.dModel, hd = c.headDim, M = c.modalities.length;
  const block = d * c.heads * hd * 2 + d * c.kvHeads * hd * 2 + 3 * d * c.ffnHidden + 2 * d + (c.qkNorm ? 2 * hd : 0);
  let total = c.vocabSize * d * (c.tieEmbeddings ? 1 : 2) + finalNormGroups(c) * d + (c.imagePositions ? c.imagePositions.size * d : 0);
  const moe = moeSettings(c);
  const experts = moe.experts * 3 * d * moe.hidden;
  const attn = block - 3 * d * c.ffnHidden;
  for (const b of c.blocks) {
    if (b === 'mot' || b === 'mod') total += block * M + (b === 'mod' ? d : 0);
    else if (b === 'moe' || b === 'mode-staged' || b === 'mode-integrated') total += attn + experts;
    else if (b === 'mot+moe') total += block * M + experts;
    else total += block;
  }
  return { total, activePerToken: c.vocabSize * d * (c.tieEmbeddings ? 1 : 2) + d + c.layers * block };
}
