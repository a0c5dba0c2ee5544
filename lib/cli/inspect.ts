// `mixt inspect`: build flags, CUDA archs, devices, driver/runtime versions, and why CUDA is
// unusable when it is.
import { buildInfo } from '../core/runtime';
import { chooseDevice, cudaStatus, devices, DeviceInfo } from '../core/device';
import { GemmKernelChoice, GemmFamily, gemmKernelTable } from '../ops/gemm_dispatch';

function gib(bytes?: number): string {
  return bytes === undefined ? '?' : `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

// The bf16 GEMM kernel of each op family on each device (f32 on CUDA is always exact SIMT).
function gemmKernels(list: DeviceInfo[], cudaArchs: string): Record<string, Record<GemmFamily, GemmKernelChoice>> {
  const out: Record<string, Record<GemmFamily, GemmKernelChoice>> = {};
  for (const d of list) out[d.device] = gemmKernelTable({ type: d.type, computeCapability: d.computeCapability, cudaArchs });
  return out;
}

export function inspectReport(): Record<string, unknown> {
  const info = buildInfo();
  const st = cudaStatus();
  return {
    mixt: info.version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    build: { cuda: info.cuda, cudaArchs: info.cudaArchs || 'none', napi: info.napiVersion, compiler: info.compiler },
    cuda: { usable: st.usable, reason: st.usable ? undefined : st.reason, driverVersion: st.driverVersion, runtimeVersion: st.runtimeVersion },
    auto: (() => {
      const c = chooseDevice('auto');
      return `${c.device} (${c.reason})`;
    })(),
    devices: devices(),
    gemmKernels: gemmKernels(devices(), info.cudaArchs),
  };
}

export function printInspect(json: boolean): void {
  const r = inspectReport();
  if (json) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  const info = buildInfo();
  const st = cudaStatus();
  const lines = [
    `mixt ${info.version} on Node ${process.version} (${process.platform}-${process.arch}), N-API ${info.napiVersion}, ${info.compiler}`,
    `build: CUDA backend ${info.cuda ? `compiled for ${info.cudaArchs}` : 'not compiled (no nvcc at build time)'}`,
    `CUDA: ${st.usable ? 'usable' : `unusable: ${st.reason}`}` +
      (st.runtimeVersion ? `; runtime ${fmt(st.runtimeVersion)}` : '') +
      (st.driverVersion ? `, driver supports ${fmt(st.driverVersion)}` : ''),
    `auto device: ${r.auto}`,
    'devices:',
  ];
  for (const d of devices()) {
    if (d.type === 'cpu') lines.push(`  cpu     ${d.name}, ${d.threads} threads, ${gib(d.totalMemory)}`);
    else lines.push(`  ${d.device}  ${d.name}, sm_${d.computeCapability?.replace('.', '')}, ${d.multiprocessors} SMs, ${gib(d.totalMemory)} (${gib(d.freeMemory)} free)`);
  }
  lines.push('bf16 GEMM kernels (f32 on CUDA: exact SIMT):');
  for (const [dev, table] of Object.entries(r.gemmKernels as Record<string, Record<string, GemmKernelChoice>>)) {
    const kinds = new Set(Object.values(table).map((c) => `${c.kernel} (${c.reason})`));
    if (kinds.size === 1) lines.push(`  ${dev.padEnd(7)} every family: ${[...kinds][0]}`);
    else for (const [fam, c] of Object.entries(table)) lines.push(`  ${dev.padEnd(7)} ${fam}: ${c.kernel} (${c.reason})`);
  }
  console.log(lines.join('\n'));
}

function fmt(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}
