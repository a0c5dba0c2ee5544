#include "../kernels/reduce.h"

#include <atomic>
#include <limits>

#include "parallel.h"

namespace mixt::cpu {

void reduce(const Stream&, ReduceOp op, const TensorView& x, int64_t outer, int64_t n, int64_t inner, const TensorView& out) {
  dispatch_float(x.dtype, "reduce", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    using A = double;  // the reference sums in double whatever the dtype
    const T* px = x.ptr<T>();
    T* po = out.ptr<T>();
    parallel_for(outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, n)), [&](int64_t b, int64_t e) {
      for (int64_t oi = b; oi < e; oi++) {
        int64_t o = oi / inner, in = oi % inner;
        const int64_t base = o * n * inner + in;
        A acc = op == ReduceOp::Max ? -std::numeric_limits<A>::infinity()
                : op == ReduceOp::Min ? std::numeric_limits<A>::infinity() : A(0);
        bool nan = false;
        for (int64_t i = 0; i < n; i++) {
          A v = A(E::load(px, base + i * inner));
          if (v != v) nan = true;
          switch (op) {
            case ReduceOp::Max: acc = v > acc ? v : acc; break;
            case ReduceOp::Min: acc = v < acc ? v : acc; break;
            case ReduceOp::SumSquares: acc += v * v; break;
            default: acc += v;
          }
        }
        if (op == ReduceOp::Mean) acc = n ? acc / A(n) : std::numeric_limits<A>::quiet_NaN();
        if (nan && (op == ReduceOp::Max || op == ReduceOp::Min)) acc = std::numeric_limits<A>::quiet_NaN();
        E::store(po, oi, typename E::acc(acc));
      }
    });
  });
}

}  // namespace mixt::cpu

namespace mixt::cpu {

void assert_finite(const Stream&, const TensorView& x) {
  dispatch_float(x.dtype, "assert_finite", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* p = x.ptr<T>();
    std::atomic<int64_t> first{-1};
    parallel_for(x.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        double v = double(Elem<T>::load(p, i));
        if (!std::isfinite(v)) {
          int64_t expected = -1;
          first.compare_exchange_strong(expected, i);
          return;
        }
      }
    });
    if (first >= 0) {
      double v = double(Elem<T>::load(p, first));
      throw Error("ERR_NON_FINITE", std::string(std::isnan(v) ? "NaN" : "an infinity") + " at element " + std::to_string(first.load()));
    }
  });
}

}  // namespace mixt::cpu
