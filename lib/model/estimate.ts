// What a model costs before it is built: the bytes of its parameters (master values and the compute
// copy; for training also the gradient and AdamW's two moments), and the memory the device has. A
// model whose values alone cannot fit is refused with the numbers before any allocation, instead of
// initialising layer after layer until the process is killed.
import * as fs from 'fs';
import * as os from 'os';
import { Device, cudaStatus } from '../core/device';
import { DType, dtypeBytes } from '../core/dtype';
import { MixtError } from '../core/errors';
import { ModelConfig, parameterCount } from './config';

export interface ParameterBytes {
  parameters: number;
  values: number; // master values + compute copy (what inference holds)
  gradients: number;
  optimizer: number; // AdamW first and second moments (f32)
}

// The compute dtype a model uses on a device unless told otherwise (as Model does).
export function defaultComputeDtype(device: Device, masterDtype: DType = 'f32'): DType {
  return device.isCuda ? 'bf16' : masterDtype;
}

export function parameterBytes(cfg: ModelConfig, device: Device, masterDtype: DType = 'f32', computeDtype = defaultComputeDtype(device, masterDtype)): ParameterBytes {
  const n = parameterCount(cfg).total + transfusionParameters(cfg);
  const master = dtypeBytes[masterDtype], compute = dtypeBytes[computeDtype];
  return {
    parameters: n,
    values: n * (master + (computeDtype === masterDtype ? 0 : compute)),
    gradients: n * compute,
    optimizer: n * 2 * 4,
  };
}

// The patch projection, timestep embedding and noise head of the Transfusion setting (small; counted
// so the estimate does not understate).
function transfusionParameters(cfg: ModelConfig): number {
  const tf = cfg.transfusion;
  return tf ? 2 * tf.patchDim * cfg.dModel + 4 * cfg.dModel * cfg.dModel : 0;
}

export interface MemoryCapacity {
  bytes: number;
  what: string; // e.g. "host RAM", "cuda:0 memory (NVIDIA H100 80GB HBM3)"
}

// A cgroup (container) memory limit below the machine's RAM, if one applies to this process.
function cgroupLimit(): number | undefined {
  for (const f of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const v = Number(fs.readFileSync(f, 'utf8').trim());
      if (Number.isFinite(v) && v > 0 && v < os.totalmem()) return v;
    } catch {
      // not there: no limit of this kind
    }
  }
  return undefined;
}

// The memory a device offers: host RAM (or the container's limit) for the CPU, the GPU's memory.
export function memoryCapacity(device: Device): MemoryCapacity {
  if (device.isCuda) {
    const d = cudaStatus().devices[device.index];
    return { bytes: d?.totalMemory ?? 0, what: `${device} memory${d ? ` (${d.name})` : ''}` };
  }
  const limit = cgroupLimit();
  return limit !== undefined ? { bytes: limit, what: 'the container\'s memory limit' } : { bytes: os.totalmem(), what: 'host RAM' };
}

export const gib = (bytes: number): string => {
  const g = bytes / 2 ** 30;
  return g >= 100 ? `${g.toFixed(0)} GiB` : g >= 0.1 ? `${g.toPrecision(3)} GiB` : `${(bytes / 2 ** 20).toPrecision(3)} MiB`;
};

// Throws ERR_OOM when the model's values alone exceed what the device has.
export function assertModelFits(cfg: ModelConfig, device: Device, masterDtype: DType = 'f32', computeDtype?: DType): void {
  const need = parameterBytes(cfg, device, masterDtype, computeDtype).values;
  const cap = memoryCapacity(device);
  if (cap.bytes > 0 && need > cap.bytes) {
    const n = parameterCount(cfg).total;
    throw new MixtError(
      `Model: ${(n / 1e9).toPrecision(3)}B parameters (${cfg.layers} layers of d ${cfg.dModel}) need ${gib(need)} for their values alone; ` +
        `${device} has ${gib(cap.bytes)} (${cap.what}). Nothing was allocated.`,
      'ERR_OOM',
    );
  }
}
