// Model weights <-> named host tensors, with readable names: a parameter untied by modality,
// `layers.{i}.attn.wq` of shape [M, out, in], is stored as one tensor per modality,
// `layers.{i}.attn.wq.{modality}` [out, in]; a parameter shared by all modalities (a dense layer,
// groups = 1) drops its leading axis: `layers.{i}.attn.wq` [out, in]. Embedding and head are whole.
import { dtypeBytes } from '../core/dtype';
import { Tensor } from '../core/tensor';
import { Parameter } from '../nn/parameter';
import { Device } from '../core/device';
import { cast, copy_, tensor } from '../ops';
import { StoredTensor } from './safetensors';

function hostBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// Reads every parameter's master values (waits for queued work) into named host tensors.
export async function exportParameters(params: Parameter[], groupNames: string[]): Promise<Map<string, StoredTensor>> {
  const out = new Map<string, StoredTensor>();
  for (const p of params) await exportTensor(out, p.name, p.value, p.groups, groupNames);
  return out;
}

// One tensor, split by its leading group axis when grouped (names from groupNames when the count
// matches, else the group index).
export async function exportTensor(out: Map<string, StoredTensor>, name: string, t: Tensor, groups: number, groupNames: string[]): Promise<void> {
  const data = hostBytes(await t.toArray());
  if (t.dtype === 'bf16') throw new Error(`exportTensor: ${name} is bf16; master weights are f32/f64`);
  if (groups === 0) {
    out.set(name, { dtype: t.dtype, shape: [...t.shape], data });
    return;
  }
  const inner = t.shape.slice(1);
  const per = (t.numel / t.shape[0]) * dtypeBytes[t.dtype];
  if (groups === 1) {
    out.set(name, { dtype: t.dtype, shape: inner, data });
    return;
  }
  for (let g = 0; g < groups; g++) {
    const label = groups === groupNames.length ? groupNames[g] : String(g);
    out.set(`${name}.${label}`, { dtype: t.dtype, shape: inner, data: data.subarray(g * per, (g + 1) * per) });
  }
}

// The stored entries of one parameter, joined back into its [G, ...] layout (host bytes).
function gather(stored: Map<string, StoredTensor>, name: string, groups: number, shape: readonly number[], groupNames: string[], what: string): StoredTensor {
  const need = (key: string, inner: readonly number[]): StoredTensor => {
    const s = stored.get(key);
    if (!s) throw new RangeError(`${what}: missing tensor ${key}`);
    if (s.shape.length !== inner.length || s.shape.some((d, i) => d !== inner[i])) {
      throw new RangeError(`${what}: ${key} has shape [${s.shape.join(', ')}], the model needs [${inner.join(', ')}]`);
    }
    return s;
  };
  if (groups === 0) return need(name, shape);
  const inner = shape.slice(1);
  if (groups === 1) {
    const s = need(name, inner);
    return { ...s, shape: [...shape] };
  }
  const parts = Array.from({ length: groups }, (_, g) => need(`${name}.${groups === groupNames.length ? groupNames[g] : g}`, inner));
  const dtype = parts[0].dtype;
  if (parts.some((p) => p.dtype !== dtype)) throw new RangeError(`${what}: the parts of ${name} have different dtypes`);
  const data = new Uint8Array(parts.reduce((a, p) => a + p.data.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return { dtype, shape: [...shape], data };
}

// What can be loaded from stored tensors: a parameter, or any tensor given a name and a loader.
export interface Loadable {
  readonly name: string;
  readonly groups: number;
  readonly shape: readonly number[];
  load(values: Tensor): void;
}

// A loadable that copies into a tensor (optimiser moments), converting the dtype.
export function tensorLoadable(name: string, groups: number, target: Tensor): Loadable {
  return {
    name,
    groups,
    shape: target.shape,
    load: (values) => (values.dtype === target.dtype ? copy_(target, values) : cast(values, target.dtype, target)),
  };
}

// Loads named host tensors into parameters (shapes checked, dtypes converted).
export function importParameters(params: Loadable[], stored: Map<string, StoredTensor>, groupNames: string[], what: string, device: Device): void {
  for (const p of params) {
    const s = gather(stored, p.name, p.groups, p.shape, groupNames, what);
    const t = fromStored(s, device);
    p.load(t);
    t.dispose();
  }
}

// The stored bytes as a typed array (a view where they are aligned for it, else a copy), uploaded.
export function fromStored(s: StoredTensor, device: Tensor['device']): Tensor {
  const size = dtypeBytes[s.dtype];
  const bytes = s.data.byteOffset % size === 0 ? s.data : s.data.slice();
  const n = bytes.byteLength / size;
  const view =
    s.dtype === 'f32' ? new Float32Array(bytes.buffer, bytes.byteOffset, n)
    : s.dtype === 'f64' ? new Float64Array(bytes.buffer, bytes.byteOffset, n)
    : s.dtype === 'i32' ? new Int32Array(bytes.buffer, bytes.byteOffset, n)
    : new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  return tensor(view, s.shape, { dtype: s.dtype, device });
}
