// Shared CLI plumbing: option parsing helpers and device selection that says what it chose.
import { InvalidArgumentError } from 'commander';
import Table from 'cli-table3';
import * as fs from 'fs';
import { DeviceChoice, chooseDevice } from '../core/device';
import { ModelConfig } from '../model/config';

export function intOption(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, received "${v}"`);
    return n;
  };
}

export function numberOption(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number >= ${min}, received "${v}"`);
    return n;
  };
}

export function pickDevice(spec: string | undefined, quiet = false): DeviceChoice {
  const c = chooseDevice(spec ?? 'auto', '--device');
  if (!quiet) process.stderr.write(`mixt: device ${c.device} (${c.reason})\n`);
  return c;
}

export function deviceName(c: DeviceChoice): string {
  return c.device.isCuda ? c.reason.replace(/^CUDA usable: /, '') : 'cpu';
}

export const fmt = (x: number, digits = 3): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

// Colour only where a person reads a terminal, and never when NO_COLOR is set (https://no-color.org).
export function useColor(stream: { isTTY?: boolean } = process.stdout): boolean {
  return !!stream.isTTY && !process.env.NO_COLOR;
}

// A table for stdout: plain text unless colour is wanted, and then bold headers (not red).
export function table(head: string[]): Table.Table {
  const color = useColor();
  return new Table({ head, style: { head: color ? ['bold'] : [], border: color ? ['grey'] : [] } });
}

export function warn(message: string): void {
  process.stderr.write(`mixt: warning: ${message}\n`);
}

// A JSON file given on the command line; errors name the option, the file and what was expected.
export function readJsonOption(option: string, file: string, expected: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RangeError(`${option} ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); expected ${expected}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new RangeError(`${option} ${file}: not JSON (${(e as Error).message}); expected ${expected}`);
  }
}

// What a Transfusion model's diffusion loss is the error of, in words.
export function predictionName(cfg: ModelConfig): string {
  const p = cfg.transfusion?.prediction ?? 'eps';
  return p === 'eps' ? 'noise' : p === 'x0' ? 'clean picture (x0)' : 'v';
}
