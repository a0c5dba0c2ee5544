// Which GEMM kernel each op family runs on a device: the policy of the native dispatch (run_gemm in
// native/cuda/gemm_core.cuh, hopper::enabled in hopper_gemm.cu), stated here so `mixt inspect` can say
// it and a CPU test can pin it. Keep the two in step.
//   bf16 on CUDA: the sm_90a wgmma/TMA kernel on compute capability 9.0 when the build holds sm_90a and
//     MIXT_HOPPER_GEMM=1 (opt-in until its parity test passes on a GPU), for the layouts it takes;
//     otherwise, and always with MIXT_GEMM=portable, the mma.sync tensor-core core.
//   f32 on CUDA: exact fp32 FMA (SIMT). CPU: the CPU backend.

export type GemmFamily = 'matmul' | 'groupedForward' | 'groupedDX' | 'groupedDW';
export const GEMM_FAMILIES: readonly GemmFamily[] = ['matmul', 'groupedForward', 'groupedDX', 'groupedDW'];

export type GemmKernel = 'cpu' | 'simt-f32' | 'mma.sync' | 'hopper-wgmma';

export interface GemmTarget {
  type: 'cpu' | 'cuda';
  computeCapability?: string; // "9.0"
  cudaArchs?: string; // the build's, e.g. "sm_80,sm_90a,compute_90"
}

export interface GemmKernelChoice {
  kernel: GemmKernel;
  reason: string;
}

type Env = Record<string, string | undefined>;

// The layouts the Hopper kernel takes, per family; others fall back to mma.sync at run time.
const HOPPER_LAYOUTS: Record<GemmFamily, string> = {
  matmul: 'batch 1: A·B or A·Bᵀ with K a multiple of 8 (and N, without transB), Aᵀ·B with M and N multiples of 8',
  groupedForward: 'K a multiple of 8',
  groupedDX: 'K and N multiples of 8',
  groupedDW: 'K and N multiples of 8',
};

export function gemmKernel(target: GemmTarget, family: GemmFamily, dtype: 'bf16' | 'f32', env: Env = process.env): GemmKernelChoice {
  if (!GEMM_FAMILIES.includes(family)) throw new RangeError(`gemmKernel: family must be one of ${GEMM_FAMILIES.join(', ')}; got ${String(family)}`);
  if (dtype !== 'bf16' && dtype !== 'f32') throw new RangeError(`gemmKernel: dtype must be 'bf16' or 'f32'; got ${String(dtype)}`);
  if (target.type === 'cpu') return { kernel: 'cpu', reason: 'CPU backend' };
  if (dtype === 'f32') return { kernel: 'simt-f32', reason: 'f32 runs exact fp32 FMA' };
  if (env.MIXT_GEMM === 'portable') return { kernel: 'mma.sync', reason: 'MIXT_GEMM=portable' };
  const cc = target.computeCapability ?? '?';
  if (cc !== '9.0') return { kernel: 'mma.sync', reason: `the Hopper kernel needs sm_90; this device is sm_${cc.replace('.', '')}` };
  if (!(target.cudaArchs ?? '').split(',').includes('sm_90a')) return { kernel: 'mma.sync', reason: 'this build has no sm_90a code' };
  if (env.MIXT_HOPPER_GEMM !== '1') return { kernel: 'mma.sync', reason: 'the Hopper kernel is opt-in (MIXT_HOPPER_GEMM=1) until its parity test passes on a GPU' };
  return { kernel: 'hopper-wgmma', reason: `MIXT_HOPPER_GEMM=1 on sm_90 when ${HOPPER_LAYOUTS[family]}; mma.sync otherwise` };
}

// Every family's bf16 kernel on one device (f32 is SIMT on every CUDA device).
export function gemmKernelTable(target: GemmTarget, env: Env = process.env): Record<GemmFamily, GemmKernelChoice> {
  const out = {} as Record<GemmFamily, GemmKernelChoice>;
  for (const f of GEMM_FAMILIES) out[f] = gemmKernel(target, f, 'bf16', env);
  return out;
}
