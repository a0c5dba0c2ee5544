// Errors mixt throws. Bad arguments are TypeError/RangeError raised in TypeScript before any native
// code runs; failures inside the engine (CUDA errors, out of memory, bad data found by a kernel)
// are MixtError with a stable `code`.

export type MixtErrorCode =
  | 'ERR_CUDA'
  | 'ERR_CUDA_OOM'
  | 'ERR_OOM'
  | 'ERR_NO_CUDA'
  | 'ERR_DISPOSED'
  | 'ERR_DEVICE_MISMATCH'
  | 'ERR_BAD_DATA'
  | 'ERR_INVALID'
  | 'ERR_INVALID_ARG'
  | 'ERR_NATIVE'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_CHECKPOINT'
  | 'ERR_NON_FINITE'
  | 'ERR_CANCELLED'
  | string;

export class MixtError extends Error {
  readonly code: MixtErrorCode;
  constructor(message: string, code: MixtErrorCode = 'ERR_NATIVE') {
    super(typeof message === 'string' ? message : safeString(message));
    this.name = 'MixtError';
    this.code = typeof code === 'string' ? code : 'ERR_NATIVE';
  }
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return 'an unprintable message';
  }
}

export class DisposedError extends MixtError {
  constructor(what: string) {
    super(`${safeString(what)}: the tensor was disposed`, 'ERR_DISPOSED');
    this.name = 'DisposedError';
  }
}

// A received value already put in words (shown as is, not quoted).
export class Shown {
  constructor(readonly text: string) {}
  describe(): string {
    return this.text;
  }
}
export const shown = (text: string): Shown => new Shown(text);

// The way a value is shown in an error message: short and unambiguous.
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) {
    const inner = value.slice(0, 8).map(describe).join(', ');
    return `[${inner}${value.length > 8 ? ', …' : ''}]`;
  }
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as { length: number }).length})`;
  // a Proxy or a look-alike of a mixt object may throw from its own methods: describe it plainly
  try {
    const desc = (value as { describe?: () => string }).describe;
    if (typeof desc === 'function') return String(desc.call(value));
    if (typeof value === 'function') return 'a function';
    if (typeof value === 'symbol') return value.toString();
    return `an object (${String((value as object).constructor?.name ?? 'Object')})`;
  } catch {
    return 'an object that cannot be described';
  }
}

type ArgErrorKind = 'type' | 'range';

function argError(kind: ArgErrorKind, fn: string, arg: string, expected: string, received: unknown): Error {
  const message = `${fn}: argument "${arg}" expected ${expected}, received ${describe(received)}`;
  const err = kind === 'type' ? new TypeError(message) : new RangeError(message);
  (err as Error & { code: string }).code = kind === 'type' ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE';
  return err;
}

export function typeError(fn: string, arg: string, expected: string, received: unknown): TypeError {
  return argError('type', fn, arg, expected, received) as TypeError;
}

export function rangeError(fn: string, arg: string, expected: string, received: unknown): RangeError {
  return argError('range', fn, arg, expected, received) as RangeError;
}
