#include "../kernels/random.h"

#include "parallel.h"

namespace mixt::cpu {

void random(const Stream&, const TensorView& out, uint64_t seed, uint64_t offset, bool normal, double a, double b) {
  dispatch_float(out.dtype, "random", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* p = out.ptr<T>();
    // f64 tensors get the same float values widened, so every dtype shares one stream.
    parallel_for(out.numel(), 1 << 12, [&](int64_t b0, int64_t e) {
      for (int64_t i = b0; i < e; i++) Elem<T>::store(p, i, random_value(seed, offset, i, normal, float(a), float(b)));
    });
  });
}

}  // namespace mixt::cpu
