// CUDA routing plan: per-chunk histograms -> one scan over (group, chunk) -> stable ranks inside each
// chunk (warps take turns, __match_any_sync finds same-group lanes) -> perm and inv. No host sync.
#include <cuda_bf16.h>

#include "../kernels/routing.h"
#include "common.cuh"

namespace mixt::cuda {
namespace {

constexpr int kChunk = 1024;  // rows per chunk = threads per block

__device__ __forceinline__ int32_t clamp_group(int32_t g, int64_t groups, int* flag, int tag) {
  if (g < 0 || g >= groups) {
    report_fault(flag, tag, kFaultIndexRange);
    return 0;
  }
  return g;
}

__global__ void chunk_histogram(const int32_t* ids, int64_t n, int64_t groups, int32_t* hist, int64_t nchunks, int* flag, int tag) {
  extern __shared__ int32_t local[];
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) local[g] = 0;
  __syncthreads();
  int64_t i = int64_t(blockIdx.x) * kChunk + threadIdx.x;
  if (i < n) atomicAdd(&local[clamp_group(ids[i], groups, flag, tag)], 1);
  __syncthreads();
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) hist[g * nchunks + blockIdx.x] = local[g];
}

// One block: exclusive scan of hist in (group, chunk) order, in place.
__global__ void scan_histogram(int32_t* hist, int64_t groups, int64_t nchunks) {
  __shared__ int64_t partial[1024];
  int64_t total = groups * nchunks;
  int64_t per = (total + blockDim.x - 1) / blockDim.x;
  int64_t b = threadIdx.x * per, e = min(total, b + per);
  int64_t s = 0;
  for (int64_t k = b; k < e; k++) s += hist[k];
  partial[threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    int64_t run = 0;
    for (int t = 0; t < int(blockDim.x); t++) {
      int64_t v = partial[t];
      partial[t] = run;
      run += v;
    }
  }
  __syncthreads();
  int64_t run = partial[threadIdx.x];
  for (int64_t k = b; k < e; k++) {
    int32_t v = hist[k];
    hist[k] = int32_t(run);
    run += v;
  }
}

__global__ void finish_offsets(const int32_t* hist, int64_t groups, int64_t nchunks, int64_t n, int32_t* counts, int32_t* offsets) {
  for (int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; g <= groups; g += int64_t(gridDim.x) * blockDim.x) {
    int64_t start = g < groups ? hist[g * nchunks] : n;
    offsets[g] = int32_t(start);
    if (g < groups) {
      int64_t end = g + 1 < groups ? hist[(g + 1) * nchunks] : n;
      counts[g] = int32_t(end - start);
    }
  }
}

__global__ void stable_ranks(const int32_t* ids, int64_t n, int64_t groups, const int32_t* base, int64_t nchunks, int32_t* perm, int32_t* inv) {
  extern __shared__ int32_t running[];
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) running[g] = 0;
  __syncthreads();
  int64_t i = int64_t(blockIdx.x) * kChunk + threadIdx.x;
  bool valid = i < n;
  int32_t g = -1;
  if (valid) {
    g = ids[i];
    if (g < 0 || g >= groups) g = 0;
  }
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int rank = 0;
  for (int w = 0; w < int(blockDim.x / 32); w++) {
    if (warp == w) {
      unsigned peers = __match_any_sync(0xffffffffu, g);
      if (valid) {
        rank = running[g] + __popc(peers & ((1u << lane) - 1));
      }
      __syncwarp();
      if (valid && lane == 31 - __clz(peers)) running[g] += __popc(peers);
    }
    __syncthreads();
  }
  if (valid) {
    int32_t pos = base[g * nchunks + blockIdx.x] + rank;
    perm[pos] = int32_t(i);
    inv[i] = pos;
  }
}

template <typename W>
__global__ void gather_kernel(const W* x, const int32_t* index, int64_t r, int64_t row, int64_t n, W* out, int* flag, int tag) {
  MIXT_GRID_STRIDE(e, r * row) {
    int64_t i = e / row, c = e % row;
    int64_t k = index[i];
    if (k < 0 || k >= n) {  // -1: no row (zeros); other values are faults
      if (c == 0 && k != -1) report_fault(flag, tag, kFaultIndexRange);
      out[e] = W(0);
    } else {
      out[e] = x[k * row + c];
    }
  }
}

template <typename T>
__global__ void scatter_kernel(const T* y, const int32_t* index, int64_t r, int64_t row, int64_t n, bool accumulate, T* out, int* flag, int tag) {
  MIXT_GRID_STRIDE(e, r * row) {
    int64_t i = e / row, c = e % row;
    int64_t k = index[i];
    if (k < 0 || k >= n) {  // -1: no row (skipped); other values are faults
      if (c == 0 && k != -1) report_fault(flag, tag, kFaultIndexRange);
      continue;
    }
    T* dst = out + k * row + c;
    if (!accumulate) {
      *dst = y[e];
    } else if constexpr (std::is_same_v<T, float>) {
      atomicAdd(dst, y[e]);
    } else {
      atomicAdd(reinterpret_cast<__nv_bfloat16*>(dst), __float2bfloat16(bf16_to_float(y[e].bits)));
    }
  }
}

}  // namespace

void routing_plan(const Stream& s, const TensorView& ids, int64_t groups, const TensorView& counts, const TensorView& offsets,
                  const TensorView& perm, const TensorView& inv) {
  cudaStream_t st = stream_of(s);
  int64_t n = ids.numel();
  int64_t nchunks = (n + kChunk - 1) / kChunk;
  if (nchunks == 0) nchunks = 1;
  int32_t* hist = nullptr;
  size_t hbytes = size_t(groups * nchunks) * sizeof(int32_t);
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&hist), hbytes, st);
  if (e != cudaSuccess) throw Error(e == cudaErrorMemoryAllocation ? "ERR_CUDA_OOM" : "ERR_CUDA", "routing_plan: workspace");
  cudaMemsetAsync(hist, 0, hbytes, st);
  size_t smem = size_t(groups) * sizeof(int32_t);
  const int32_t* id = static_cast<const int32_t*>(ids.data);
  if (n > 0) chunk_histogram<<<unsigned(nchunks), kChunk, smem, st>>>(id, n, groups, hist, nchunks, s.error_flag, s.op_tag);
  scan_histogram<<<1, 1024, 0, st>>>(hist, groups, nchunks);
  finish_offsets<<<grid_for(groups + 1), 256, 0, st>>>(hist, groups, nchunks, n, static_cast<int32_t*>(counts.data),
                                                        static_cast<int32_t*>(offsets.data));
  if (n > 0)
    stable_ranks<<<unsigned(nchunks), kChunk, smem, st>>>(id, n, groups, hist, nchunks, static_cast<int32_t*>(perm.data),
                                                          static_cast<int32_t*>(inv.data));
  cudaFreeAsync(hist, st);
}

void gather_rows(const Stream& s, const TensorView& x, const TensorView& index, int64_t row, const TensorView& out) {
  int64_t r = index.numel(), n = row ? x.numel() / row : 0;
  if (r * row == 0) return;
  const int32_t* idx = static_cast<const int32_t*>(index.data);
  auto launch = [&](auto* tag) {
    using W = std::remove_pointer_t<decltype(tag)>;
    gather_kernel<W><<<grid_for(r * row), 256, 0, stream_of(s)>>>(static_cast<const W*>(x.data), idx, r, row, n,
                                                                   static_cast<W*>(out.data), s.error_flag, s.op_tag);
  };
  switch (dtype_size(x.dtype)) {
    case 2: return launch(static_cast<uint16_t*>(nullptr));
    case 4: return launch(static_cast<uint32_t*>(nullptr));
    default: fail("gather_rows: unsupported dtype on CUDA");
  }
}

void scatter_rows(const Stream& s, const TensorView& y, const TensorView& index, int64_t row, bool accumulate, const TensorView& out) {
  int64_t r = index.numel(), n = row ? out.numel() / row : 0;
  if (r * row == 0) return;
  dispatch_gpu_float(y.dtype, "scatter_rows", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    scatter_kernel<T><<<grid_for(r * row), 256, 0, stream_of(s)>>>(static_cast<const T*>(y.data), static_cast<const int32_t*>(index.data),
                                                                    r, row, n, accumulate, static_cast<T*>(out.data), s.error_flag, s.op_tag);
  });
}

}  // namespace mixt::cuda
