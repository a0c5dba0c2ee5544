#include <cfloat>

#include "../kernels/reduce.h"
#include "common.cuh"

namespace mixt::cuda {
namespace {

// One block reduces one output element: threads stride over the axis, then a tree in shared memory.
template <typename T>
__global__ void reduce_kernel(ReduceOp op, const T* x, int64_t outer, int64_t n, int64_t inner, T* out) {
  __shared__ float part[256];
  __shared__ int nan_seen;
  for (int64_t oi = blockIdx.x; oi < outer * inner; oi += gridDim.x) {
    int64_t o = oi / inner, in = oi % inner;
    const int64_t base = o * n * inner + in;
    if (threadIdx.x == 0) nan_seen = 0;
    float acc = op == ReduceOp::Max ? -INFINITY : op == ReduceOp::Min ? INFINITY : 0.f;
    bool nan = false;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      float v = Elem<T>::load(x, base + i * inner);
      nan |= v != v;
      switch (op) {
        case ReduceOp::Max: acc = fmaxf(acc, v); break;
        case ReduceOp::Min: acc = fminf(acc, v); break;
        case ReduceOp::SumSquares: acc += v * v; break;
        default: acc += v;
      }
    }
    __syncthreads();
    if (nan) nan_seen = 1;
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w) {
        float u = part[threadIdx.x + w], v = part[threadIdx.x];
        part[threadIdx.x] = op == ReduceOp::Max ? fmaxf(u, v) : op == ReduceOp::Min ? fminf(u, v) : u + v;
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      float r = part[0];
      if (op == ReduceOp::Mean) r = n ? r / float(n) : NAN;
      if (nan_seen && (op == ReduceOp::Max || op == ReduceOp::Min)) r = NAN;
      Elem<T>::store(out, oi, r);
    }
    __syncthreads();
  }
}

}  // namespace

void reduce(const Stream& s, ReduceOp op, const TensorView& x, int64_t outer, int64_t n, int64_t inner, const TensorView& out) {
  int64_t m = outer * inner;
  if (!m) return;
  dispatch_gpu_float(x.dtype, "reduce", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    unsigned blocks = unsigned(m < 65535 * 4 ? m : 65535 * 4);
    reduce_kernel<T><<<blocks, 256, 0, stream_of(s)>>>(op, static_cast<const T*>(x.data), outer, n, inner, static_cast<T*>(out.data));
  });
}

}  // namespace mixt::cuda

namespace mixt::cuda {
namespace {
template <typename T>
__global__ void assert_finite_kernel(const T* x, int64_t n, int* flag, int tag) {
  MIXT_GRID_STRIDE(i, n) {
    if (!isfinite(Elem<T>::load(x, i))) {
      report_fault(flag, tag, kFaultNonFinite);
      return;
    }
  }
}
}  // namespace

void assert_finite(const Stream& s, const TensorView& x) {
  int64_t n = x.numel();
  if (!n) return;
  dispatch_gpu_float(x.dtype, "assert_finite", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    assert_finite_kernel<T><<<grid_for(n), 256, 0, stream_of(s)>>>(static_cast<const T*>(x.data), n, s.error_flag, s.op_tag);
  });
}

}  // namespace mixt::cuda
