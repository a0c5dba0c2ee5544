// Devices: the CPU backend and each CUDA device. `auto` picks CUDA where usable and says why it
// chose what it chose; asking for CUDA where it is unusable is an error that names the reason.
import type { NativeCudaStatus } from '../../binding';
import { MixtError, typeError } from './errors';
import { native } from './native';

export type DeviceType = 'cpu' | 'cuda';
export type DeviceSpec = 'auto' | 'cpu' | 'cuda' | `cuda:${number}` | Device;

export class Device {
  private static readonly cache = new Map<number, Device>();
  private constructor(
    readonly type: DeviceType,
    readonly index: number,
  ) {}

  // The native device number: -1 for the CPU, the CUDA ordinal otherwise.
  get id(): number {
    return this.type === 'cpu' ? -1 : this.index;
  }
  get isCuda(): boolean {
    return this.type === 'cuda';
  }
  toString(): string {
    return this.type === 'cpu' ? 'cpu' : `cuda:${this.index}`;
  }
  describe(): string {
    return `device ${this.toString()}`;
  }
  static of(id: number): Device {
    let d = Device.cache.get(id);
    if (!d) {
      d = id < 0 ? new Device('cpu', 0) : new Device('cuda', id);
      Device.cache.set(id, d);
    }
    return d;
  }
  static get cpu(): Device {
    return Device.of(-1);
  }
}

export interface DeviceInfo {
  device: string;
  type: DeviceType;
  name: string;
  totalMemory?: number;
  freeMemory?: number;
  computeCapability?: string;
  multiprocessors?: number;
  driverVersion?: string;
  runtimeVersion?: string;
  threads?: number;
}

let statusCache: NativeCudaStatus | null = null;

export function cudaStatus(): NativeCudaStatus {
  if (!statusCache) statusCache = native().cudaStatus();
  return statusCache;
}

function cudaVersionString(v: number): string {
  return v ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : 'none';
}

// Every device this process can use: the CPU first, then each CUDA device.
export function devices(): DeviceInfo[] {
  const st = cudaStatus();
  const os = require('os') as typeof import('os');
  const cpuModel = os.cpus()[0]?.model ?? 'cpu';
  const list: DeviceInfo[] = [
    { device: 'cpu', type: 'cpu', name: cpuModel.trim(), totalMemory: os.totalmem(), freeMemory: os.freemem(), threads: native().buildInfo().cpuThreads },
  ];
  for (const d of st.devices) {
    list.push({
      device: `cuda:${d.index}`,
      type: 'cuda',
      name: d.name,
      totalMemory: d.totalMemory,
      freeMemory: d.freeMemory,
      computeCapability: d.computeCapability,
      multiprocessors: d.multiprocessors,
      driverVersion: cudaVersionString(st.driverVersion),
      runtimeVersion: cudaVersionString(st.runtimeVersion),
    });
  }
  return list;
}

export interface DeviceChoice {
  device: Device;
  reason: string;
}

// Resolves a device spec. `auto` (the default, or MIXT_DEVICE) never fails: it returns the choice
// and why. An explicit `cuda` where CUDA is unusable throws ERR_NO_CUDA naming the reason.
export function chooseDevice(spec?: DeviceSpec | string, caller: unknown = 'device'): DeviceChoice {
  const fn = typeof caller === 'string' && caller ? caller : 'chooseDevice'; // the caller's name, in errors
  const s = spec ?? process.env.MIXT_DEVICE ?? 'auto';
  if (s instanceof Device) return { device: s, reason: 'given' };
  if (typeof s !== 'string') throw typeError(fn, 'device', "'auto', 'cpu', 'cuda' or 'cuda:N'", s);
  if (s === 'cpu') return { device: Device.cpu, reason: 'asked for cpu' };
  if (s === 'auto') {
    const st = cudaStatus();
    if (st.usable) return { device: Device.of(0), reason: `CUDA usable: ${st.devices[0].name}` };
    return { device: Device.cpu, reason: `CUDA unusable: ${st.reason}` };
  }
  const m = /^cuda(?::(\d+))?$/.exec(s);
  if (!m) throw typeError(fn, 'device', "'auto', 'cpu', 'cuda' or 'cuda:N'", s);
  const index = m[1] === undefined ? 0 : Number(m[1]);
  const st = cudaStatus();
  if (!st.usable) throw new MixtError(`${fn}: CUDA was asked for (${s}) but is unusable: ${st.reason}`, 'ERR_NO_CUDA');
  if (index >= st.devices.length) {
    throw new MixtError(`${fn}: ${s} does not exist; this machine has ${st.devices.length} CUDA device(s)`, 'ERR_NO_CUDA');
  }
  return { device: Device.of(index), reason: `asked for ${s}` };
}

export function device(spec?: DeviceSpec | string): Device {
  return chooseDevice(spec).device;
}

let defaultDev: Device | null = null;

// The device tensors are made on when none is given: MIXT_DEVICE, else the CPU (as in PyTorch;
// training entry points default to `auto` instead).
export function defaultDevice(): Device {
  if (!defaultDev) defaultDev = chooseDevice(process.env.MIXT_DEVICE ?? 'cpu', 'defaultDevice').device;
  return defaultDev;
}

export function setDefaultDevice(spec: DeviceSpec | string): Device {
  defaultDev = chooseDevice(spec, 'setDefaultDevice').device;
  return defaultDev;
}
