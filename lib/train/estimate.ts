// Before training: the memory one step needs and the time it takes on the chosen device, so that a
// run that cannot fit is refused with the numbers and a run that will take long says so first.
// Memory: parameters (lib/model/estimate) plus the activations the layers save for backward, which
// grow with batch x sequence. Time: the step's FLOPs over the device's measured matmul rate (a short
// calibration GEMM in the compute dtype), scaled by the fraction of it a training step reaches.
import { Device } from '../core/device';
import { DType, dtypeBytes } from '../core/dtype';
import { MixtError } from '../core/errors';
import { ModelConfig, flopsPerToken } from '../model/config';
import { MemoryCapacity, defaultComputeDtype, gib, memoryCapacity, parameterBytes } from '../model/estimate';
import { matmul, randn } from '../ops';

export interface StepShape {
  batch: number; // rows per micro-batch
  seqLen: number;
  accum?: number; // micro-batches per step (activations are those of one)
  steps?: number; // for the run's total time
}

export interface StepEstimate {
  parameters: number;
  memory: { values: number; gradients: number; optimizer: number; activations: number; total: number };
  capacity: MemoryCapacity;
  fits: boolean;
  flopsPerStep: number;
  deviceFlops?: number; // measured matmul rate (FLOP/s), when calibrated
  msPerStep?: number;
  runSeconds?: number; // msPerStep x steps
}

// Bytes a layer saves per token for backward, in elements of the compute dtype: the block input and
// its two norms, Q/K/V and the attention output, the output projection, the FFN's gate, up and
// activation, and the grouped copies made for the per-modality projections (measured against
// memory().peakBytes on the CPU: within 5% above the peak for the tiny preset at 4x256 and 8x256,
// and for d 256 x 4 layers at 4x512).
function savedPerTokenPerLayer(cfg: ModelConfig): number {
  const d = cfg.dModel, attn = cfg.heads * cfg.headDim, kv = cfg.kvHeads * cfg.headDim;
  return 5 * d + 2 * attn + kv + 2 * cfg.ffnHidden + cfg.heads;
}

export function activationBytes(cfg: ModelConfig, shape: StepShape, computeDtype: DType): number {
  const tokens = shape.batch * shape.seqLen;
  const b = dtypeBytes[computeDtype];
  const layers = tokens * cfg.layers * savedPerTokenPerLayer(cfg) * b;
  // embedding rows, the final norm, and one LM-head chunk of logits (<= 64 MiB) with its gradient
  const head = tokens * 4 * cfg.dModel * b + Math.min(tokens * cfg.vocabSize * 4, 2 * 64 * 2 ** 20);
  // backward holds one layer's gradients of activations beside the saved ones
  const transient = tokens * savedPerTokenPerLayer(cfg) * b;
  return layers + head + transient;
}

// The fraction of the calibration GEMM's rate a whole training step reaches (attention, norms,
// routing, the optimiser and host work are slower per FLOP than one large GEMM). Measured on 2 CPU
// cores: 0.3 to 0.5 for the tiny preset and d 256 x 4 layers. The GPU's figure is a guess until
// measured there.
const STEP_EFFICIENCY = { cpu: 0.3, cuda: 0.2 };
// Per layer and micro-batch, the fixed cost of launching a step's ops (validation, queueing, small
// kernels): what dominates a model too small for its FLOPs to matter (d 16 x 1 layer: ~4 ms a step).
const LAYER_OVERHEAD_MS = { cpu: 1.5, cuda: 0.3 };

// Measures the device's matmul rate in the compute dtype: the fastest of a few square GEMMs after
// one warm-up (the read of the result is included: on a GPU it is small beside the product).
export async function measureMatmulFlops(device: Device, dtype: DType = defaultComputeDtype(device)): Promise<number> {
  const n = device.isCuda ? 4096 : 768;
  const a = randn([n, n], { device, dtype }), b = randn([n, n], { device, dtype });
  // the fastest of a few awaited products: a busy machine slows some, not the device's rate
  const once = async () => {
    const t0 = performance.now();
    const c = matmul(a, b);
    await c.toArray();
    c.dispose();
    return performance.now() - t0;
  };
  try {
    await once();
    let best = Infinity;
    for (let i = 0; i < 4; i++) best = Math.min(best, await once());
    return (2 * n * n * n) / (best / 1000);
  } finally {
    a.dispose();
    b.dispose();
  }
}

// Memory and (when `deviceFlops` is given or `calibrate` is set) time of one training step.
export async function estimateStep(
  cfg: ModelConfig,
  shape: StepShape,
  device: Device,
  o: { calibrate?: boolean; deviceFlops?: number; masterDtype?: DType } = {},
): Promise<StepEstimate> {
  const compute = defaultComputeDtype(device, o.masterDtype ?? 'f32');
  const p = parameterBytes(cfg, device, o.masterDtype ?? 'f32', compute);
  const activations = activationBytes(cfg, shape, compute);
  const total = p.values + p.gradients + p.optimizer + activations;
  const capacity = memoryCapacity(device);
  const flopsPerStep = flopsPerToken(cfg, shape.seqLen) * shape.batch * shape.seqLen * (shape.accum ?? 1);
  const est: StepEstimate = {
    parameters: p.parameters,
    memory: { values: p.values, gradients: p.gradients, optimizer: p.optimizer, activations, total },
    capacity,
    fits: !(capacity.bytes > 0 && total > capacity.bytes),
    flopsPerStep,
  };
  const rate = o.deviceFlops ?? (o.calibrate ? await measureMatmulFlops(device, compute) : undefined);
  if (rate) {
    est.deviceFlops = rate;
    const overhead = LAYER_OVERHEAD_MS[device.type] * (cfg.layers + 2) * (shape.accum ?? 1);
    est.msPerStep = (flopsPerStep / (rate * STEP_EFFICIENCY[device.type])) * 1000 + overhead;
    if (shape.steps) est.runSeconds = (est.msPerStep * shape.steps) / 1000;
  }
  return est;
}

// One line for a person: "about 1.2 GiB and 0.4 s per step (7 min for 1000 steps)".
export function describeEstimate(e: StepEstimate): string {
  const time = e.msPerStep === undefined ? '' : ` and ${seconds(e.msPerStep / 1000)} per step${e.runSeconds !== undefined ? ` (${seconds(e.runSeconds)} in all)` : ''}`;
  return `about ${gib(e.memory.total)} of ${gib(e.capacity.bytes)} (${e.capacity.what})${time}`;
}

// Two significant digits, no exponent: "7.5 ms", "120 ms", "2.2 s", "14 min".
export function seconds(s: number): string {
  const two = (x: number) => (x >= 10 ? String(Math.round(x)) : x.toPrecision(2));
  if (s < 1) return `${two(s * 1000)} ms`;
  if (s < 120) return `${two(s)} s`;
  if (s < 7200) return `${two(s / 60)} min`;
  return `${(s / 3600).toPrecision(3)} h`;
}

// Throws ERR_OOM, with the numbers, when the step cannot fit in the device's memory.
export function assertStepFits(e: StepEstimate, shape: StepShape): void {
  if (e.fits) return;
  const m = e.memory;
  throw new MixtError(
    `a training step of ${shape.batch}x${shape.seqLen} tokens needs about ${gib(m.total)} ` +
      `(parameters ${gib(m.values)}, gradients ${gib(m.gradients)}, AdamW moments ${gib(m.optimizer)}, activations ${gib(m.activations)}); ` +
      `${e.capacity.what} is ${gib(e.capacity.bytes)}. Use a smaller --batch, --seq or model.`,
    'ERR_OOM',
  );
}

// Why a run deserves a warning before it starts: a slow step or a long run.
export function estimateWarnings(e: StepEstimate, limits = { stepSeconds: 10, runSeconds: 30 * 60 }): string[] {
  const out: string[] = [];
  if (e.msPerStep !== undefined && e.msPerStep / 1000 > limits.stepSeconds) out.push(`each step will take about ${seconds(e.msPerStep / 1000)}`);
  if (e.runSeconds !== undefined && e.runSeconds > limits.runSeconds) out.push(`the run will take about ${seconds(e.runSeconds)}`);
  if (e.fits && e.memory.total > 0.8 * e.capacity.bytes) out.push(`it needs ${gib(e.memory.total)}, most of ${e.capacity.what} (${gib(e.capacity.bytes)})`);
  return out;
}
