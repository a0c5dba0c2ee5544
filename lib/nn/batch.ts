// The per-step token layout every layer shares: T packed tokens, their modality ids, documents,
// image spans and positions, and the modality routing plan (computed once per step on the device,
// reused by every layer). The residual stream runs in grouped order (tokens of one modality
// contiguous) so every modality-untied op is one grouped launch; attention alone needs the
// original order, reached by gathering through the plan's permutation.
import { Device } from '../core/device';
import { Tensor } from '../core/tensor';
import { RoutingPlan, gatherRows, routingPlan, tensor } from '../ops';

export interface TokenLayout {
  modality: Int32Array; // [T] modality id per token, original order
  docIds: Int32Array; // [T] non-decreasing document id per token
  positions: Int32Array; // [T] position inside the document (RoPE and causal order)
  spanIds?: Int32Array; // [T] image span id (-1 outside spans): bidirectional inside a span
  rowLength?: number; // tokens per packed row (sequence): T = rows * rowLength (default T)
}

// The same fields already on the device (a subset of another batch's tokens).
interface DeviceLayout {
  modalityIds: Tensor;
  docIds: Tensor;
  positions: Tensor;
  spanIds: Tensor | null;
  rowLength: number;
}

export class Batch {
  readonly T: number;
  readonly modalities: number;
  readonly device: Device;
  readonly modalityIds: Tensor; // i32 [T] original order
  readonly docIds: Tensor;
  readonly positions: Tensor;
  readonly spanIds: Tensor | null;
  readonly plan: RoutingPlan;
  readonly groupedIds: Tensor; // i32 [T] modality of each row in grouped order
  readonly identity: boolean; // one modality: grouped order is the original order
  readonly rowLength: number; // tokens per packed row
  // tokens per modality, when the layout came from the host (null for a subset chosen on the device)
  readonly hostCounts: number[] | null;
  // modality id of each token, original order, when the layout came from the host
  readonly hostModality: Int32Array | null;
  #repeated = new Map<number, Tensor>();
  #denseOffsets: Tensor | null = null;

  constructor(layout: TokenLayout | DeviceLayout, modalities: number, device: Device) {
    this.modalities = modalities;
    this.device = device;
    if ('modality' in layout) {
      const ids = (a: Int32Array) => tensor(a, [a.length], { dtype: 'i32', device });
      this.T = layout.modality.length;
      this.modalityIds = ids(layout.modality);
      this.docIds = ids(layout.docIds);
      this.positions = ids(layout.positions);
      this.spanIds = layout.spanIds ? ids(layout.spanIds) : null;
      this.rowLength = layout.rowLength ?? this.T;
      const counts = new Array<number>(modalities).fill(0);
      for (const m of layout.modality) if (m >= 0 && m < modalities) counts[m]++;
      this.hostCounts = counts;
      this.hostModality = layout.modality;
    } else {
      this.T = layout.modalityIds.shape[0];
      this.modalityIds = layout.modalityIds;
      this.docIds = layout.docIds;
      this.positions = layout.positions;
      this.spanIds = layout.spanIds;
      this.rowLength = layout.rowLength;
      this.hostCounts = null;
      this.hostModality = null;
    }
    this.identity = modalities === 1;
    this.plan = routingPlan(this.modalityIds, modalities);
    this.groupedIds = this.identity ? this.modalityIds : gatherRows(this.modalityIds, this.plan.perm);
  }

  // The tokens at `index` (original order, ascending), as a batch of their own: modality, document,
  // position and span ids gathered on the device (positions stay the original ones), with its own
  // routing plan. Used by Mixture-of-Depths: the chosen tokens go through the block.
  subset(index: Tensor, rowLength: number): Batch {
    const g = (t: Tensor) => gatherRows(t, index);
    return new Batch(
      { modalityIds: g(this.modalityIds), docIds: g(this.docIds), positions: g(this.positions), spanIds: this.spanIds ? g(this.spanIds) : null, rowLength },
      this.modalities,
      this.device,
    );
  }

  // Original order -> grouped order (rows of x gathered through the permutation).
  toGrouped(x: Tensor): Tensor {
    return this.identity ? x.reshape([...x.shape]) : gatherRows(x, this.plan.perm);
  }
  // Grouped order -> original order.
  toOriginal(xg: Tensor): Tensor {
    return this.identity ? xg.reshape([...xg.shape]) : gatherRows(xg, this.plan.inv);
  }

  // Group offsets for a layer untied into `groups` parts: the modality plan's, or [0, T] for a
  // layer shared by all modalities (a dense block inside a multimodal model).
  offsets(groups: number): Tensor {
    if (groups === this.modalities) return this.plan.offsets;
    if (groups !== 1) throw new RangeError(`Batch.offsets: a layer has ${groups} groups, the batch ${this.modalities} modalities`);
    if (!this.#denseOffsets) this.#denseOffsets = tensor(new Int32Array([0, this.T]), [2], { dtype: 'i32', device: this.device });
    return this.#denseOffsets;
  }
  // Group id of each grouped row for such a layer (null when shared: one group).
  rowIds(groups: number): Tensor | null {
    return groups === 1 ? null : this.groupedIds;
  }
  // Row ids repeated `times` per row (rows viewed as [T * times, ...]: per-head norms).
  rowIdsRepeated(groups: number, times: number): Tensor | null {
    return groups === 1 ? null : this.groupedIdsRepeated(times);
  }

  // Grouped modality ids repeated `times` per row.
  groupedIdsRepeated(times: number): Tensor {
    if (times === 1) return this.groupedIds;
    const cached = this.#repeated.get(times);
    if (cached) return cached;
    {
      const idx = new Int32Array(this.T * times);
      for (let i = 0; i < idx.length; i++) idx[i] = Math.floor(i / times);
      const index = tensor(idx, [idx.length], { dtype: 'i32', device: this.device });
      const t = gatherRows(this.groupedIds, index);
      index.dispose();
      this.#repeated.set(times, t);
      return t;
    }
  }

  get mask(): { causal: boolean; docIds: Tensor; positions: Tensor; spanIds?: Tensor } {
    return { causal: true, docIds: this.docIds, positions: this.positions, ...(this.spanIds ? { spanIds: this.spanIds } : {}) };
  }

  dispose(): void {
    this.#denseOffsets?.dispose();
    for (const t of this.#repeated.values()) t.dispose();
    this.#repeated.clear();
    if (!this.identity) this.groupedIds.dispose();
    this.plan.dispose();
    this.modalityIds.dispose();
    this.docIds.dispose();
    this.positions.dispose();
    this.spanIds?.dispose();
  }
}
