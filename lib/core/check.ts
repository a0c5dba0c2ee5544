// Argument checks shared by the public API. Each throws a TypeError or RangeError that names the
// function, the argument, what was expected and what came; a disposed tensor is a DisposedError.
import { Device } from './device';
import { DType } from './dtype';
import { MixtError, rangeError, shown, typeError } from './errors';
import { Tensor } from './tensor';

export interface TensorRule {
  dtype?: DType | readonly DType[];
  ndim?: number | readonly number[];
  shape?: readonly (number | null)[]; // null: any size on that axis
  device?: Device;
}

export function checkTensor(fn: string, arg: string, t: unknown, rule: TensorRule = {}): Tensor {
  // a brand check, not instanceof: a Proxy or an object with Tensor's prototype is not a Tensor
  if (!Tensor.isTensor(t)) throw typeError(fn, arg, 'a Tensor', t);
  t.handle(`${fn}: argument "${arg}"`);
  if (rule.dtype !== undefined) {
    const ok = typeof rule.dtype === 'string' ? [rule.dtype] : rule.dtype;
    if (!ok.includes(t.dtype)) throw typeError(fn, arg, `dtype ${ok.join(' or ')}`, shown(`${t.dtype} (${t.describe()})`));
  }
  if (rule.ndim !== undefined) {
    const ok = typeof rule.ndim === 'number' ? [rule.ndim] : rule.ndim;
    if (!ok.includes(t.ndim)) throw rangeError(fn, arg, `${ok.join(' or ')} dimensions`, shown(`shape [${t.shape.join(', ')}]`));
  }
  if (rule.shape !== undefined) {
    const s = rule.shape;
    const ok = s.length === t.ndim && s.every((d, i) => d === null || d === t.shape[i]);
    if (!ok) {
      const want = `shape [${s.map((d) => (d === null ? '*' : d)).join(', ')}]`;
      throw rangeError(fn, arg, want, shown(`shape [${t.shape.join(', ')}]`));
    }
  }
  if (rule.device !== undefined && t.device !== rule.device) {
    throw new MixtError(
      `${fn}: argument "${arg}" is on ${t.device} but the other tensors are on ${rule.device}; move it with .to()`,
      'ERR_DEVICE_MISMATCH',
    );
  }
  return t;
}

export function checkFloat(fn: string, arg: string, t: unknown, rule: TensorRule = {}): Tensor {
  return checkTensor(fn, arg, t, { dtype: ['f32', 'f64', 'bf16'], ...rule });
}

// All tensors on one device; returns it.
export function sameDevice(fn: string, named: Record<string, Tensor>): Device {
  let dev: Device | null = null;
  let first = '';
  for (const [name, t] of Object.entries(named)) {
    if (!dev) {
      dev = t.device;
      first = name;
    } else if (t.device !== dev) {
      throw new MixtError(
        `${fn}: argument "${name}" is on ${t.device} but "${first}" is on ${dev}; move one with .to()`,
        'ERR_DEVICE_MISMATCH',
      );
    }
  }
  return dev!;
}

export function sameDtype(fn: string, named: Record<string, Tensor>): DType {
  let dt: DType | null = null;
  let first = '';
  for (const [name, t] of Object.entries(named)) {
    if (!dt) {
      dt = t.dtype;
      first = name;
    } else if (t.dtype !== dt) {
      throw typeError(fn, name, `dtype ${dt} (as "${first}")`, t.dtype);
    }
  }
  return dt!;
}

export interface NumberRule {
  integer?: boolean;
  min?: number;
  max?: number;
  minExclusive?: boolean;
}

export function checkNumber(fn: string, arg: string, v: unknown, rule: NumberRule = {}): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw typeError(fn, arg, rule.integer ? 'an integer' : 'a number', v);
  if (rule.integer && !Number.isSafeInteger(v)) throw typeError(fn, arg, 'an integer', v);
  if (!rule.integer && !Number.isFinite(v)) throw rangeError(fn, arg, 'a finite number', v);
  const lo = rule.min, hi = rule.max;
  if (lo !== undefined && (rule.minExclusive ? v <= lo : v < lo)) {
    throw rangeError(fn, arg, `a number ${rule.minExclusive ? '>' : '>='} ${lo}${hi !== undefined ? ` and <= ${hi}` : ''}`, v);
  }
  if (hi !== undefined && v > hi) throw rangeError(fn, arg, `a number <= ${hi}`, v);
  return v;
}

export function checkBool(fn: string, arg: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw typeError(fn, arg, 'a boolean', v);
  return v;
}

export function checkOneOf<T extends string>(fn: string, arg: string, v: unknown, options: readonly T[]): T {
  if (typeof v !== 'string' || !options.includes(v as T)) throw typeError(fn, arg, `one of ${options.map((o) => `'${o}'`).join(', ')}`, v);
  return v as T;
}

// An options object. With `keys` (the accepted ones), an unknown key is a TypeError naming it and
// listing the accepted keys, and the result is a copy read once: later reads see what was checked,
// whatever getters or other code do to the caller's object.
export function checkObject(fn: string, arg: string, v: unknown, keys?: readonly string[]): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Tensor.isTensor(v)) throw typeError(fn, arg, 'an options object', v);
  if (!keys) return v as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  for (const key of Reflect.ownKeys(v)) {
    if (typeof key !== 'string' || !keys.includes(key)) {
      const accepted = keys.length ? keys.map((k) => `'${k}'`).join(', ') : 'none';
      throw typeError(fn, arg, `only the keys ${accepted}`, shown(`an unknown key '${String(key)}'`));
    }
    copy[key] = (v as Record<string, unknown>)[key];
  }
  return copy;
}

// Checks that an optional option, when present (anything but undefined), passes `check`.
export function optional<T>(v: unknown, check: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : check(v);
}
