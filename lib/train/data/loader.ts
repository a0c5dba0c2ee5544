// Packs documents into fixed-length rows: each epoch shuffles the documents (seeded), fills rows
// greedily with whole documents (a longer one is cut to the row), pads the rest. Targets are the
// next token inside the same document (-1 elsewhere); attention never crosses documents.
import { hostRandom } from '../../core/random';
import { TokenDataset } from './dataset';

export interface HostBatch {
  rows: number;
  seqLen: number;
  tokens: Int32Array; // [rows * seqLen]
  modality: Int32Array; // modality of each input token
  docIds: Int32Array; // non-decreasing document id per token (padding runs get their own)
  positions: Int32Array; // position inside the document
  targets: Int32Array; // next token in the same document, -1 where none
  targetModality: Int32Array; // modality of each target (0 where none)
  targetCounts: number[]; // valid targets per modality
  spanIds?: Int32Array; // image spans (continuous images attend bidirectionally), -1 elsewhere
  images?: { x0: Float32Array; positions: Int32Array; timesteps: Int32Array }; // Transfusion
}

export interface LoaderState {
  epoch: number;
  cursor: number;
}

export class PackedLoader {
  #order: Int32Array = new Int32Array(0);
  #state: LoaderState = { epoch: 0, cursor: 0 };

  constructor(
    readonly data: TokenDataset,
    readonly seqLen: number,
    readonly rows: number,
    readonly seed: number,
    readonly padToken = 0,
    readonly diffusion: { timesteps: number; timestepPower?: number } = { timesteps: 1000 },
  ) {
    if (data.docOffsets.length < 2) throw new RangeError('PackedLoader: the dataset has no documents');
    this.#shuffle();
  }

  get state(): LoaderState {
    return { ...this.#state };
  }
  setState(s: LoaderState): void {
    this.#state = { epoch: s.epoch, cursor: s.cursor };
    this.#shuffle();
  }

  #shuffle(): void {
    const d = this.data.docOffsets.length - 1;
    const order = Int32Array.from({ length: d }, (_, i) => i);
    const r = hostRandom(this.seed * 1000003 + this.#state.epoch);
    for (let i = d - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    this.#order = order;
  }


  next(): HostBatch {
    const { seqLen: S, rows: R, data } = this;
    const n = R * S;
    const b: HostBatch = {
      rows: R, seqLen: S,
      tokens: new Int32Array(n), modality: new Int32Array(n), docIds: new Int32Array(n), positions: new Int32Array(n),
      targets: new Int32Array(n).fill(-1), targetModality: new Int32Array(n),
      targetCounts: new Array(data.vocab.modalities.length).fill(0),
    };
    const patchIdx = data.patchIndex;
    const imgPos: number[] = [], imgRow: number[] = [], imgT: number[] = [];
    if (patchIdx) b.spanIds = new Int32Array(n).fill(-1);
    let docId = 0, spanId = -1;
    for (let r = 0; r < R; r++) {
      let at = r * S;
      const end = at + S;
      for (;;) {
        const doc = this.#peekDoc();
        const lo = data.docOffsets[doc], len = Math.min(data.docOffsets[doc + 1] - lo, S);
        if (at + len > end) {
          if (at === r * S) throw new Error('unreachable: a document longer than a row is cut to the row');
          break; // the row is full; this document starts the next row
        }
        // one diffusion timestep per document, a pure function of (seed, epoch, document): resumable
        const t = patchIdx ? this.#timestep(hostRandom(this.seed * 7919 + this.#state.epoch * 104729 + doc * 31)()) : 0;
        this.#takeDoc();
        for (let i = 0; i < len; i++) {
          const p = at + i;
          b.tokens[p] = data.tokens[lo + i];
          b.modality[p] = data.modality[lo + i];
          b.docIds[p] = docId;
          b.positions[p] = i;
          if (patchIdx && patchIdx[lo + i] >= 0) {
            if (i === 0 || patchIdx[lo + i - 1] < 0) spanId++;
            b.spanIds![p] = spanId; // a picture's patches see each other, not another picture's
            imgPos.push(p);
            imgRow.push(patchIdx[lo + i]);
            imgT.push(t);
            continue; // a patch predicts noise, not a next token
          }
          if (patchIdx && i + 1 < len && patchIdx[lo + i + 1] >= 0) continue; // nor does the token before an image
          if (i + 1 < len) {
            b.targets[p] = data.tokens[lo + i + 1];
            const tm = data.modality[lo + i + 1];
            b.targetModality[p] = tm;
            b.targetCounts[tm]++;
          }
        }
        docId++;
        at += len;
        if (at === end) break;
      }
      if (at < end) {
        for (let p = at; p < end; p++) {
          b.tokens[p] = this.padToken;
          b.docIds[p] = docId;
          b.positions[p] = p - at;
        }
        docId++;
      }
    }
    if (patchIdx) {
      const pd = data.patchDim!;
      const x0 = new Float32Array(imgPos.length * pd);
      imgRow.forEach((row, j) => x0.set(data.patches!.subarray(row * pd, (row + 1) * pd), j * pd));
      b.images = { x0, positions: Int32Array.from(imgPos), timesteps: Int32Array.from(imgT) };
    }
    return b;
  }

  // floor(T * u^(1 / power)): density proportional to t^(power - 1) (power 1: uniform)
  #timestep(u: number): number {
    const { timesteps, timestepPower = 1 } = this.diffusion;
    return Math.min(timesteps - 1, Math.floor(timesteps * u ** (1 / timestepPower)));
  }

  #peekDoc(): number {
    if (this.#state.cursor >= this.#order.length) {
      this.#state = { epoch: this.#state.epoch + 1, cursor: 0 };
      this.#shuffle();
    }
    return this.#order[this.#state.cursor];
  }
  #takeDoc(): void {
    this.#state.cursor++;
  }
}

// Rank `rank`'s share of a global batch under data parallelism: rows [rank·R/size, (rank+1)·R/size).
// Every rank packs the same global batch (same seed, same loader state), so the split is the data
// order of one process at the global batch, and a checkpoint's loader state fits any world size.
export function shardBatch(hb: HostBatch, rank: number, size: number): HostBatch {
  if (!Number.isSafeInteger(size) || size < 1 || hb.rows % size !== 0) {
    throw new RangeError(`shardBatch: argument "size" expected a divisor of the batch's ${hb.rows} rows, received ${size}`);
  }
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= size) throw new RangeError(`shardBatch: argument "rank" expected an integer in [0, ${size}), received ${rank}`);
  if (size === 1) return hb;
  const rows = hb.rows / size, lo = rank * rows * hb.seqLen, hi = lo + rows * hb.seqLen;
  const firstDoc = hb.docIds[lo];
  const b: HostBatch = {
    rows, seqLen: hb.seqLen,
    tokens: hb.tokens.slice(lo, hi), modality: hb.modality.slice(lo, hi),
    docIds: hb.docIds.slice(lo, hi).map((d) => d - firstDoc), positions: hb.positions.slice(lo, hi),
    targets: hb.targets.slice(lo, hi), targetModality: hb.targetModality.slice(lo, hi),
    targetCounts: new Array(hb.targetCounts.length).fill(0),
  };
  for (let p = 0; p < b.targets.length; p++) if (b.targets[p] >= 0) b.targetCounts[b.targetModality[p]]++;
  if (hb.spanIds) b.spanIds = hb.spanIds.slice(lo, hi);
  if (hb.images) {
    const pd = hb.images.positions.length ? hb.images.x0.length / hb.images.positions.length : 0;
    const mine: number[] = [];
    hb.images.positions.forEach((p, j) => (p >= lo && p < hi ? mine.push(j) : undefined));
    const x0 = new Float32Array(mine.length * pd);
    mine.forEach((j, k) => x0.set(hb.images!.x0.subarray(j * pd, (j + 1) * pd), k * pd));
    b.images = { x0, positions: Int32Array.from(mine, (j) => hb.images!.positions[j] - lo), timesteps: Int32Array.from(mine, (j) => hb.images!.timesteps[j]) };
  }
  return b;
}
