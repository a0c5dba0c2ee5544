// Where a token sits inside its picture. A picture is a run of consecutive tokens of the image
// modality (colour tokens, or Transfusion's patch placeholders) in raster order; each gets a learned
// embedding of its index in the run, added to its token embedding (as a ViT's position embedding).
// 1D RoPE alone gives only relative offsets: inside a bidirectional patch span every patch then
// looks alike, and a small model cannot tell a picture's rows and columns apart.
import { Tensor } from '../core/tensor';
import { gatherRows, scatterRows, tensor } from '../ops';
import { InitContext, normalInit } from './init';
import { Module, release } from './module';
import { Parameter } from './parameter';

// Index of each token inside its run of image tokens (-1 for other tokens and beyond `size`).
// `carry` continues a sequence fed in pieces (incremental decoding): the image tokens just before
// the first token, updated to those at the end.
export function imageIndex(tokens: ArrayLike<number>, range: [number, number], size: number, carry?: { run: number }): Int32Array {
  const out = new Int32Array(tokens.length).fill(-1);
  let run = carry?.run ?? 0;
  for (let i = 0; i < tokens.length; i++) {
    const image = tokens[i] >= range[0] && tokens[i] < range[1];
    run = image ? run + 1 : 0;
    if (image && run <= size) out[i] = run - 1;
  }
  if (carry) carry.run = run;
  return out;
}

interface Saved {
  rows: Tensor; // positions of the image tokens in the sequence [n]
  index: Tensor; // their index inside the picture [n]
}

export class ImagePosition extends Module {
  readonly table: Parameter;
  #saved: Saved | null = null;

  constructor(readonly name: string, readonly size: number, dModel: number, init: InitContext, computeDtype: Tensor['dtype']) {
    super();
    this.table = new Parameter(`${name}.weight`, normalInit(init, [size, dModel], 0.02), 'embedding', computeDtype);
  }

  parameters(): Parameter[] {
    return [this.table];
  }

  // x (original order, [T, d]) += the embedding of each image token's index (imageIndex's output).
  add(x: Tensor, index: Int32Array): void {
    this.clearSaved();
    const at: number[] = [], idx: number[] = [];
    index.forEach((k, i) => {
      if (k >= 0) {
        at.push(i);
        idx.push(k);
      }
    });
    if (!at.length) return;
    const dev = { dtype: 'i32' as const, device: x.device };
    const rows = tensor(Int32Array.from(at), [at.length], dev), ix = tensor(Int32Array.from(idx), [idx.length], dev);
    const e = gatherRows(this.table.compute, ix);
    scatterRows(e, rows, x.shape[0], { accumulate: true, out: x });
    e.dispose();
    this.#saved = { rows, index: ix };
  }

  // The table's gradient from the input gradient dx (original order).
  backward(dx: Tensor): void {
    const s = this.#saved;
    if (!s) return;
    const d = gatherRows(dx, s.rows);
    this.table.accumulate(scatterRows(d, s.index, this.size, { accumulate: true }));
    d.dispose();
    this.clearSaved();
  }

  clearSaved(): void {
    this.#saved = release(this.#saved);
  }
}
