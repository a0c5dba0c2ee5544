// Helpers shared by the CUDA kernels: launch shapes, dtype dispatch, data-fault reporting.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "../kernels/runtime.h"

namespace mixt::cuda {

inline cudaStream_t stream_of(const Stream& s) { return static_cast<cudaStream_t>(s.cuda_stream); }

// A grid for grid-stride loops over n items: enough blocks to fill the GPU, no more.
inline unsigned grid_for(int64_t n, int threads = 256) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > 65535LL * 8) blocks = 65535LL * 8;
  return unsigned(blocks);
}

// The float dtypes the CUDA backend stores: f32 and bf16 (f64 is CPU-only).
template <typename F>
void dispatch_gpu_float(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::F32: return f(static_cast<float*>(nullptr));
    case DType::BF16: return f(static_cast<bf16*>(nullptr));
    default: break;
  }
  fail(std::string(op) + ": dtype " + dtype_name(d) + " is not supported on CUDA");
}

// Records the first data fault the device finds; the host reports it at the next fence.
__device__ __forceinline__ void report_fault(int* flag, int op_tag, int fault) {
  if (flag && atomicCAS(flag, 0, op_tag) == 0) flag[1] = fault;
}

// An opt-in kernel's switch: the environment variable is set to 1.
inline bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  return e && e[0] == '1';
}

// Compute capability as major * 10 + minor (90: Hopper).
inline int compute_capability(int device) {
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  return major * 10 + minor;
}

// A workspace of `count` T in stream order (free it with cudaFreeAsync on the same stream); running
// out of device memory is ERR_CUDA_OOM.
template <typename T>
T* stream_workspace(size_t count, cudaStream_t stream, const char* what) {
  void* p = nullptr;
  const cudaError_t e = cudaMallocAsync(&p, count * sizeof(T), stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw Error(e == cudaErrorMemoryAllocation ? "ERR_CUDA_OOM" : "ERR_CUDA", std::string(what) + ": workspace: " + cudaGetErrorString(e));
  }
  return static_cast<T*>(p);
}

#define MIXT_GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

}  // namespace mixt::cuda
