#include "../kernels/loss.h"

#include <atomic>
#include <limits>
#include <vector>

#include "parallel.h"
#include "scalar.h"

namespace mixt::cpu {

void cross_entropy_rows(const Stream&, const TensorView& logits, const TensorView& targets, const TensorView& loss, const TensorView& lse,
                        const TensorView& correct) {
  const int64_t R = logits.rows(), V = logits.cols();
  const int32_t* tg = targets.ptr<int32_t>();
  int32_t* ok = correct.ptr<int32_t>();
  std::atomic<int64_t> bad{-1};
  dispatch_float(logits.dtype, "crossEntropy", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    const T* x = logits.ptr<T>();
    parallel_for(R, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        const int64_t o = r * V;
        double mx = -std::numeric_limits<double>::infinity();
        int64_t arg = 0;
        for (int64_t c = 0; c < V; c++) {
          double v = double(E::load(x, o + c));
          if (v > mx) {
            mx = v;
            arg = c;
          }
        }
        double s = 0;
        for (int64_t c = 0; c < V; c++) s += std::exp(double(E::load(x, o + c)) - mx);
        double l = mx + std::log(s);
        set_scalar(lse, r, l);
        int32_t t = tg[r];
        if (t >= V || t < -1) {
          int64_t none = -1;
          bad.compare_exchange_strong(none, r);
          t = -1;
        }
        set_scalar(loss, r, t < 0 ? 0.0 : l - double(E::load(x, o + t)));
        ok[r] = t >= 0 && arg == t ? 1 : 0;
      }
    });
  });
  if (bad >= 0)
    throw Error("ERR_BAD_DATA", "target " + std::to_string(tg[bad.load()]) + " of row " + std::to_string(bad.load()) +
                                    " is outside the vocabulary [0, " + std::to_string(V) + ")");
}

void cross_entropy_rows_backward(const Stream&, const TensorView& logits, const TensorView& targets, const TensorView& lse,
                                 const TensorView& dloss) {
  const int64_t R = logits.rows(), V = logits.cols();
  const int32_t* tg = targets.ptr<int32_t>();
  dispatch_float(logits.dtype, "crossEntropyBackward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    T* x = logits.ptr<T>();
    parallel_for(R, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        const int64_t o = r * V;
        int32_t t = tg[r];
        if (t < 0 || t >= V) {
          for (int64_t c = 0; c < V; c++) E::store(x, o + c, 0);
          continue;
        }
        double l = get_scalar(lse, r), d = get_scalar(dloss, r);
        for (int64_t c = 0; c < V; c++) {
          double p = std::exp(double(E::load(x, o + c)) - l);
          E::store(x, o + c, typename E::acc((p - (c == t ? 1.0 : 0.0)) * d));
        }
      }
    });
  });
}

void group_sum(const Stream&, const TensorView& values, const TensorView& ids, const TensorView& mask, int64_t groups, const TensorView& sums,
               const TensorView& counts) {
  const int64_t n = values.numel();
  const int32_t* id = ids.ptr<int32_t>();
  const int32_t* mk = mask.data ? mask.ptr<int32_t>() : nullptr;
  std::vector<double> s(groups, 0.0), c(groups, 0.0);
  int64_t bad = -1;
  for (int64_t i = 0; i < n; i++) {
    if (mk && !mk[i]) continue;
    int32_t g = id[i];
    if (g < 0 || g >= groups) {
      if (bad < 0) bad = i;
      continue;
    }
    s[g] += get_scalar(values, i);
    c[g] += 1;
  }
  for (int64_t g = 0; g < groups; g++) {
    set_scalar(sums, g, s[g]);
    set_scalar(counts, g, c[g]);
  }
  if (bad >= 0) throw Error("ERR_BAD_DATA", "group id " + std::to_string(id[bad]) + " of row " + std::to_string(bad) + " is out of range");
}

}  // namespace mixt::cpu
