// `mixt inspect`: build flags, CUDA archs, devices, driver/runtime versions, and why CUDA is
// unusable when it is.
import { buildInfo } from '../core/runtime';
import { chooseDevice, cudaStatus, devices } from '../core/device';

function gib(bytes?: number): string {
  return bytes === undefined ? '?' : `${(bytes / 2 ** 30).toFixed(1)} GiB`;
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
  console.log(lines.join('\n'));
}

function fmt(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}
