// Data parallelism: every process holds the whole model, trains on its rows of each global batch,
// and sums the gradients over the processes before the one optimiser step all of them take (so
// every replica stays equal). Gradients go in buckets of about `bucketBytes`, each handed to the
// communicator as soon as the backward has finished its layers (`overlap`), so the all-reduce of
// late layers runs while the backward of earlier ones is still computing.
import { Communicator, CommOptions } from '../core/comm';
import { Device } from '../core/device';
import { Tensor } from '../core/tensor';
import { Parameter } from '../nn/parameter';

export interface DataParallelOptions extends CommOptions {
  /** Gradient bytes per all-reduce (default 4 MiB here; 25 MiB is the usual GPU choice). */
  bucketBytes?: number;
  /** Start each bucket's all-reduce during the backward (default true); false: all after it. */
  overlap?: boolean;
}

export interface DataParallel {
  comm: Communicator;
  bucketBytes: number;
  overlap: boolean;
}

export const DEFAULT_BUCKET_BYTES = 4 << 20;

/** Joins the job's processes (MPI for a CPU model, NCCL for a CUDA one). */
export async function initDataParallel(device: Device, opts: DataParallelOptions = {}): Promise<DataParallel> {
  const bucketBytes = opts.bucketBytes ?? DEFAULT_BUCKET_BYTES;
  if (!Number.isSafeInteger(bucketBytes) || bucketBytes < 1) throw new RangeError(`initDataParallel: argument "bucketBytes" expected a positive integer, received ${bucketBytes}`);
  return { comm: await Communicator.init(device, opts), bucketBytes, overlap: opts.overlap ?? true };
}

// The buckets of one step: gradients join as they become final, a full bucket is all-reduced at
// once. Bucket boundaries depend only on the order and sizes of the parameters, so every rank
// issues the same all-reduces in the same order.
export class GradientReducer {
  #pending: Tensor[] = [];
  #bytes = 0;
  #done = new Set<Parameter>();

  constructor(readonly dp: DataParallel, readonly params: readonly Parameter[]) {}

  /** These parameters' gradients are complete (absent ones become zeros: another rank may have some). */
  ready(params: readonly Parameter[]): void {
    for (const p of params) {
      if (this.#done.has(p)) continue;
      this.#done.add(p);
      const g = p.gradOrZeros();
      if (this.#pending.length && g.dtype !== this.#pending[0].dtype) this.#flush();
      this.#pending.push(g);
      this.#bytes += g.nbytes;
      if (this.#bytes >= this.dp.bucketBytes) this.#flush();
    }
  }

  /** Reduces every gradient not reduced yet; later work (the optimiser) waits for all of them. */
  finish(): void {
    this.ready(this.params);
    this.#flush();
    this.dp.comm.wait();
    this.#done.clear();
  }

  #flush(): void {
    if (this.#pending.length) this.dp.comm.allReduceSum_(this.#pending);
    this.#pending = [];
    this.#bytes = 0;
  }
}

/** Makes every replica start from rank 0's parameters (values and, on resume, optimiser moments). */
export function broadcastFromRankZero(dp: DataParallel, params: readonly Parameter[], moments: readonly Tensor[]): void {
  dp.comm.broadcast_([...params.map((p) => p.value), ...moments], 0);
  dp.comm.wait();
  for (const p of params) p.syncCompute();
}
