// Types of the native addon (build/Release/mixt.node). Only lib/core/native.ts loads it; everything
// else goes through lib/ops, which validates arguments before calling these.
// Devices are numbers here: -1 is the CPU, 0..n-1 are CUDA ordinals. Dtypes are codes:
// 0 f32, 1 f64, 2 bf16, 3 i32.

export interface NativeHandle {
  readonly nbytes: number;
  dispose(): void;
  view(shape: number[], elementOffset: number, dtype?: number): NativeHandle;
  read(): Promise<ArrayBuffer>;
}

export interface NativeMemoryStats {
  tensors: number;
  bytes: number;
  peakBytes: number;
  allocations: number;
}

export interface NativeCudaDevice {
  index: number;
  name: string;
  totalMemory: number;
  freeMemory?: number;
  computeCapability: string;
  multiprocessors: number;
  l2Bytes: number;
  sharedMemoryPerBlock: number;
}

export interface NativeCudaStatus {
  compiled: boolean;
  usable: boolean;
  reason: string;
  driverVersion: number;
  runtimeVersion: number;
  devices: NativeCudaDevice[];
}

export interface NativeBuildInfo {
  version: string;
  cuda: boolean;
  cudaArchs: string;
  napiVersion: number;
  compiler: string;
  cpuThreads: number;
}

// A timestamp in a device's stream order (opaque).
export type NativeMark = { readonly __mark: unique symbol };

type H = NativeHandle;

export interface Binding {
  setErrorClass(cls: new (message: string, code: string) => Error): void;
  buildInfo(): NativeBuildInfo;
  cudaStatus(): NativeCudaStatus;

  // tensors
  empty(device: number, dtype: number, shape: number[]): H;
  fromBuffer(device: number, dtype: number, shape: number[], data: ArrayBufferView): H;
  copy(src: H, dst: H): void;
  memory(): Record<string, NativeMemoryStats>;
  memoryLimit(device: number): { limit: number; used: number };
  setMemoryLimit(device: number, bytes: number): void;
  shutdown(): void;
  resetPeak(): void;
  sync(): Promise<void>;
  mark(device: number): NativeMark;
  elapsed(from: NativeMark, to: NativeMark): Promise<number>;

  // elementwise (native/kernels/elementwise.h)
  binary(op: number, a: H, b: H, out: H): void;
  unary(op: number, x: H, out: H): void;
  axpby(alpha: number, x: H, beta: number, y: H | null, out: H): void;
  cast(x: H, out: H): void;
  fill(out: H, value: number): void;

  // random (native/kernels/random.h)
  random(out: H, seedLo: number, seedHi: number, offsetLo: number, offsetHi: number, normal: boolean, a: number, b: number): void;

  // reduce (native/kernels/reduce.h)
  reduce(op: number, x: H, outer: number, n: number, inner: number, out: H): void;
  assertFinite(x: H, name: string): void;

  // matmul (native/kernels/matmul.h)
  matmul(a: H, b: H, c: H, batch: number, m: number, n: number, k: number, transA: boolean, transB: boolean, alpha: number, beta: number): void;

  // routing (native/kernels/routing.h)
  routingPlan(ids: H, groups: number, counts: H, offsets: H, perm: H, inv: H): void;
  gatherRows(x: H, index: H, row: number, out: H): void;
  scatterRows(y: H, index: H, row: number, accumulate: boolean, out: H): void;

  // norm and activation (native/kernels/norm.h)
  normForward(kind: number, x: H, weight: H, bias: H | null, ids: H | null, groups: number, eps: number, mean: H | null, rstd: H, y: H): void;
  normBackward(kind: number, x: H, weight: H, bias: H | null, ids: H | null, groups: number, eps: number, mean: H | null, rstd: H, dy: H, dx: H, dweight: H, dbias: H | null): void;
  swiglu(gateUp: H, h: H): void;
  swigluBackward(dh: H, gateUp: H, dGateUp: H): void;

  // grouped GEMM (native/kernels/grouped_gemm.h): kind 0 forward, 1 dX, 2 dW
  groupedGemm(kind: number, a: H, b: H, offsets: H, out: H, groups: number, rows: number, nOut: number, kIn: number, beta: number): void;

  // loss and optimiser (native/kernels/loss.h)
  crossEntropyRows(logits: H, targets: H, loss: H, lse: H, correct: H): void;
  crossEntropyRowsBackward(logits: H, targets: H, lse: H, dLoss: H): void;
  groupSum(values: H, ids: H, mask: H | null, groups: number, sums: H, counts: H): void;
  adamw(param: H, grad: H, m: H, v: H, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale: H | null, copy: H | null): void;
  sumSquaresInto(x: H, out: H): void;
  clipCoefficient(normSquared: H, maxNorm: number, out: H): void;

  // attention (native/kernels/attention.h)
  attentionForward(q: H, k: H, v: H, docIds: H | null, spanIds: H | null, positions: H | null, causal: boolean, scale: number, out: H, lse: H): void;
  attentionBackward(q: H, k: H, v: H, docIds: H | null, spanIds: H | null, positions: H | null, causal: boolean, scale: number, out: H, dout: H, lse: H, dq: H, dk: H, dv: H): void;
  rope(x: H, positions: H, theta: number, inverse: boolean, out: H): void;
  segmentIds(cuSeqlens: H, out: H): void;

  // depth and expert routing (native/kernels/moe.h)
  topkRows(scores: H, rows: number, cols: number, rowStride: number, colStride: number, k: number, flat: boolean, out: H): void;
  routerTopk(logits: H, k: number, gate: number, renormalize: boolean, probs: H, lse: H, experts: H, gates: H): void;
  routerBackward(logits: H, k: number, gate: number, renormalize: boolean, probs: H, lse: H, experts: H, gates: H, dgates: H | null, dprobs: H | null, z: number, dlogits: H): void;
  rowScale(x: H, w: H, y: H): void;
  rowDot(a: H, b: H, out: H): void;
  slotTokens(slots: H, k: number, experts: H | null, noop: number, tokens: H): void;
  capacitySlots(perm: H, offsets: H, capacity: number, order: H | null, slots: H): void;
  assignmentPriority(rows: H | null, tokens: number, k: number, order: H): void;
  choiceGateIndex(chosen: H, experts: number, out: H): void;

  // collectives across processes (native/addon/ops_collective.cpp): MPI for CPU tensors, NCCL for
  // CUDA tensors, both loaded at run time. Tensor collectives are stream-ordered; host ones are Promises.
  commMpiInit(timeoutSeconds: number, library: string): Promise<{ rank: number; size: number; library: string }>;
  commAllReduce(tensors: H[]): void;
  commBroadcast(tensors: H[], root: number): void;
  commWait(device: number): void;
  commHostAllReduce(values: Float64Array): Promise<Float64Array>;
  commHostBroadcast(bytes: Uint8Array, root: number): Promise<Uint8Array>;
  commBarrier(): Promise<void>;
  commFinalize(): Promise<void>;
  commNcclUniqueId(): Uint8Array;
  commNcclInit(device: number, rank: number, size: number, id: Uint8Array): Promise<string>;
}
