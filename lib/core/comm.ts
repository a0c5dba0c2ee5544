// A communicator across processes for data-parallel training: MPI for CPU tensors, NCCL for CUDA
// tensors, both loaded by the addon at run time (no build-time dependency; a clear
// ERR_COMM_UNAVAILABLE names the library looked for and why it is unusable). Tensor collectives are
// stream-ordered like every op (they return at once); host collectives are Promises settled off the
// JS thread. A collective that does not complete within the timeout (a peer died or stopped) fails
// with ERR_COMM_TIMEOUT instead of hanging.
import { Device } from './device';
import { MixtError, typeError } from './errors';
import { native } from './native';
import { Tensor } from './tensor';

export interface CommOptions {
  /** Seconds a collective may take before it fails with ERR_COMM_TIMEOUT (default: MIXT_COMM_TIMEOUT, else 300). */
  timeoutSeconds?: number;
  /** The MPI library to load (default: MIXT_MPI_LIBRARY, else libmpi.so.40, else libmpi.so). Open MPI's ABI only. */
  mpiLibrary?: string;
}

const DEFAULT_TIMEOUT_S = 300;

// Launched by mpirun (Open MPI, or a PMIx launcher)?
export function launchedByMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.OMPI_COMM_WORLD_SIZE !== undefined || env.PMIX_RANK !== undefined;
}

// This process's index among those on its node (picks its GPU): the launcher's, else LOCAL_RANK.
export function localRank(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.OMPI_COMM_WORLD_LOCAL_RANK ?? env.LOCAL_RANK ?? '0';
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`local rank: expected a non-negative integer, received "${v}"`);
  return n;
}

function timeoutOf(o: CommOptions): number {
  const t = o.timeoutSeconds ?? (process.env.MIXT_COMM_TIMEOUT !== undefined ? Number(process.env.MIXT_COMM_TIMEOUT) : DEFAULT_TIMEOUT_S);
  if (!(t > 0) || !Number.isFinite(t)) throw typeError('Communicator.init', 'timeoutSeconds (or MIXT_COMM_TIMEOUT)', 'a positive number of seconds', t);
  return t;
}

export class Communicator {
  private constructor(
    readonly backend: 'mpi' | 'nccl',
    readonly rank: number,
    readonly size: number,
    readonly library: string,
    readonly device: Device,
    readonly hostLibrary: string | null, // MPI for host collectives (null: one process, none needed)
  ) {}

  /**
   * Joins the processes of this job. CPU: MPI (under mpirun). CUDA: NCCL on `device`, bootstrapped
   * over MPI under mpirun, or alone (world size 1) without a launcher.
   */
  static async init(device: Device, opts: CommOptions = {}): Promise<Communicator> {
    if (!(device instanceof Device)) throw typeError('Communicator.init', 'device', 'a Device', device);
    const timeout = timeoutOf(opts);
    const mpiLibrary = opts.mpiLibrary ?? process.env.MIXT_MPI_LIBRARY ?? '';
    if (typeof mpiLibrary !== 'string') throw typeError('Communicator.init', 'mpiLibrary', 'a file name', mpiLibrary);
    const b = native();
    const underMpi = launchedByMpi();
    if (!device.isCuda) {
      const w = await b.commMpiInit(timeout, mpiLibrary);
      return new Communicator('mpi', w.rank, w.size, w.library, device, w.library);
    }
    if (!underMpi) {
      const size = Number(process.env.WORLD_SIZE ?? '1');
      if (size !== 1) {
        throw new MixtError(`Communicator.init: WORLD_SIZE=${process.env.WORLD_SIZE} without an MPI launcher; NCCL's bootstrap here goes over MPI: launch with mpirun -n N`, 'ERR_COMM_UNAVAILABLE');
      }
      const library = await b.commNcclInit(device.id, 0, 1, b.commNcclUniqueId());
      return new Communicator('nccl', 0, 1, library, device, null);
    }
    const w = await b.commMpiInit(timeout, mpiLibrary);
    // rank 0 makes NCCL's bootstrap id; MPI carries it to the others
    const id = await b.commHostBroadcast(w.rank === 0 ? b.commNcclUniqueId() : new Uint8Array(128), 0);
    const library = await b.commNcclInit(device.id, w.rank, w.size, id);
    return new Communicator('nccl', w.rank, w.size, library, device, w.library);
  }

  #tensors(fn: string, tensors: readonly Tensor[]): ReturnType<Tensor['handle']>[] {
    if (!Array.isArray(tensors)) throw typeError(`Communicator.${fn}`, 'tensors', 'an array of tensors', tensors);
    return tensors.map((t, i) => {
      if (!Tensor.isTensor(t)) throw typeError(`Communicator.${fn}`, `tensors[${i}]`, 'a Tensor', t);
      if (t.device !== this.device) throw new MixtError(`Communicator.${fn}: tensors[${i}] is on ${t.device}, the communicator on ${this.device}`, 'ERR_DEVICE_MISMATCH');
      return t.handle(`Communicator.${fn}: tensors[${i}]`);
    });
  }

  /** Sums the tensors over all processes, in place (one flat buffer per call on the CPU). Stream-ordered. */
  allReduceSum_(tensors: readonly Tensor[]): void {
    const hs = this.#tensors('allReduceSum_', tensors);
    // a dtype the backend cannot sum is refused here: refused later, on the communication thread or in
    // an open NCCL group, it would leave every later collective failing or waiting
    const sums = this.device.isCuda ? ['f32', 'bf16'] : ['f32', 'f64'];
    tensors.forEach((t, i) => {
      if (!sums.includes(t.dtype) || t.dtype !== tensors[0].dtype) {
        throw typeError('Communicator.allReduceSum_', `tensors[${i}]`, `${sums.join(' or ')}, one dtype for all`, t.dtype);
      }
    });
    if (hs.length) native().commAllReduce(hs); // at world size 1 too: the same path as many
  }

  /** Copies rank `root`'s tensors into every process's. Stream-ordered. */
  broadcast_(tensors: readonly Tensor[], root = 0): void {
    if (!Number.isSafeInteger(root) || root < 0 || root >= this.size) throw typeError('Communicator.broadcast_', 'root', `a rank in [0, ${this.size})`, root);
    const hs = this.#tensors('broadcast_', tensors);
    if (hs.length) native().commBroadcast(hs, root);
  }

  /** Later work on this communicator's device waits for the collectives queued so far. */
  wait(): void {
    native().commWait(this.device.id);
  }

  /** Sums host numbers over all processes (statistics). */
  async hostAllReduceSum(values: Float64Array): Promise<Float64Array> {
    if (!(values instanceof Float64Array)) throw typeError('Communicator.hostAllReduceSum', 'values', 'a Float64Array', values);
    return this.hostLibrary && this.size > 1 ? native().commHostAllReduce(values) : Float64Array.from(values);
  }

  async barrier(): Promise<void> {
    if (this.hostLibrary && this.size > 1) await native().commBarrier();
  }

  /** Ends MPI after a barrier (mpirun reports a process that exits without it as failed). */
  async finalize(): Promise<void> {
    if (this.hostLibrary) await native().commFinalize();
  }

  describe(): string {
    return `rank ${this.rank} of ${this.size}, ${this.backend === 'mpi' ? 'MPI' : 'NCCL'} (${this.library}) on ${this.device}`;
  }
}
