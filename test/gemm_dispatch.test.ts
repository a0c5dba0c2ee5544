// The GEMM dispatch policy `mixt inspect` reports (lib/ops/gemm_dispatch.ts, mirroring run_gemm and
// hopper::enabled): which kernel each op family gets, per device, build and environment.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { GEMM_FAMILIES, gemmKernel, gemmKernelTable } from '../lib/ops/gemm_dispatch';

const h100 = { type: 'cuda' as const, computeCapability: '9.0', cudaArchs: 'sm_80,sm_90a,compute_90' };
const a100 = { type: 'cuda' as const, computeCapability: '8.0', cudaArchs: 'sm_80,sm_90a,compute_90' };

describe('GEMM kernel dispatch policy', () => {
  it('keeps mma.sync the bf16 default on sm_90 until the Hopper kernel is opted in', () => {
    for (const f of GEMM_FAMILIES) {
      expect(gemmKernel(h100, f, 'bf16', {}).kernel).toBe('mma.sync');
      expect(gemmKernel(h100, f, 'bf16', {}).reason).toMatch(/opt-in \(MIXT_HOPPER_GEMM=1\)/);
      expect(gemmKernel(h100, f, 'bf16', { MIXT_HOPPER_GEMM: '1' }).kernel).toBe('hopper-wgmma');
    }
  });

  it('gives the Hopper kernel only to sm_90 devices of a build with sm_90a code', () => {
    expect(gemmKernel(a100, 'matmul', 'bf16', { MIXT_HOPPER_GEMM: '1' })).toEqual({ kernel: 'mma.sync', reason: expect.stringMatching(/sm_80/) });
    const noSm90a = { ...h100, cudaArchs: 'sm_80,compute_90' };
    expect(gemmKernel(noSm90a, 'groupedDW', 'bf16', { MIXT_HOPPER_GEMM: '1' })).toEqual({ kernel: 'mma.sync', reason: 'this build has no sm_90a code' });
    expect(gemmKernel({ ...h100, computeCapability: '9.1' }, 'groupedDX', 'bf16', { MIXT_HOPPER_GEMM: '1' }).kernel).toBe('mma.sync');
  });

  it('MIXT_GEMM=portable forces mma.sync; f32 is SIMT, the CPU is the CPU', () => {
    expect(gemmKernel(h100, 'groupedForward', 'bf16', { MIXT_HOPPER_GEMM: '1', MIXT_GEMM: 'portable' })).toEqual({ kernel: 'mma.sync', reason: 'MIXT_GEMM=portable' });
    expect(gemmKernel(h100, 'groupedForward', 'f32', { MIXT_HOPPER_GEMM: '1' }).kernel).toBe('simt-f32');
    expect(gemmKernel({ type: 'cpu' }, 'matmul', 'bf16', { MIXT_HOPPER_GEMM: '1' }).kernel).toBe('cpu');
  });

  it('names the layouts the Hopper kernel takes per family', () => {
    const t = gemmKernelTable(h100, { MIXT_HOPPER_GEMM: '1' });
    expect(Object.keys(t)).toEqual([...GEMM_FAMILIES]);
    expect(t.groupedDW.reason).toMatch(/K and N multiples of 8/);
    expect(t.matmul.reason).toMatch(/batch 1/);
  });

  it('refuses an unknown family or dtype, naming the argument', () => {
    expect(() => gemmKernel(h100, 'conv' as never, 'bf16')).toThrow(/gemmKernel: family must be one of matmul, .*got conv/);
    expect(() => gemmKernel(h100, 'matmul', 'f16' as never)).toThrow(RangeError);
  });

  it('mixt inspect reports the kernel of every family on every device', () => {
    const out = execFileSync(process.execPath, [path.join(__dirname, '..', 'bin', 'mixt.js'), 'inspect', '--json'], { encoding: 'utf8' });
    const r = JSON.parse(out);
    for (const d of r.devices) expect(Object.keys(r.gemmKernels[d.device])).toEqual([...GEMM_FAMILIES]);
    expect(r.gemmKernels.cpu.matmul.kernel).toBe('cpu');
  });
});
