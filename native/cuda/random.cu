#include "../kernels/random.h"
#include "common.cuh"

namespace mixt::cuda {
namespace {
template <typename T>
__global__ void random_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, bool normal, float a, float b) {
  MIXT_GRID_STRIDE(i, n) { Elem<T>::store(out, i, random_value(seed, offset, i, normal, a, b)); }
}
}  // namespace

void random(const Stream& s, const TensorView& out, uint64_t seed, uint64_t offset, bool normal, double a, double b) {
  int64_t n = out.numel();
  if (!n) return;
  dispatch_gpu_float(out.dtype, "random", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    random_kernel<T><<<grid_for(n), 256, 0, stream_of(s)>>>(static_cast<T*>(out.data), n, seed, offset, normal, float(a), float(b));
  });
}

}  // namespace mixt::cuda
