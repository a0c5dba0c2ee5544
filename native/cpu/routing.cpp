#include "../kernels/routing.h"

#include <atomic>
#include <vector>

#include "parallel.h"

namespace mixt::cpu {

void routing_plan(const Stream&, const TensorView& ids, int64_t groups, const TensorView& counts, const TensorView& offsets,
                  const TensorView& perm, const TensorView& inv) {
  const int32_t* id = ids.ptr<int32_t>();
  int64_t n = ids.numel();
  int32_t* cnt = counts.ptr<int32_t>();
  int32_t* off = offsets.ptr<int32_t>();
  int32_t* p = perm.ptr<int32_t>();
  int32_t* q = inv.ptr<int32_t>();
  std::vector<int64_t> c(groups, 0);
  int64_t bad = -1;
  for (int64_t i = 0; i < n; i++) {
    int32_t g = id[i];
    if (g < 0 || g >= groups) {
      if (bad < 0) bad = i;
      g = 0;
    }
    c[g]++;
  }
  off[0] = 0;
  for (int64_t g = 0; g < groups; g++) {
    cnt[g] = int32_t(c[g]);
    off[g + 1] = int32_t(off[g] + c[g]);
  }
  std::vector<int64_t> at(groups);
  for (int64_t g = 0; g < groups; g++) at[g] = off[g];
  for (int64_t i = 0; i < n; i++) {
    int32_t g = id[i] < 0 || id[i] >= groups ? 0 : id[i];
    int64_t j = at[g]++;
    p[j] = int32_t(i);
    q[i] = int32_t(j);
  }
  if (bad >= 0)
    throw Error("ERR_BAD_DATA", "group id " + std::to_string(id[bad]) + " of row " + std::to_string(bad) + " is outside [0, " +
                                    std::to_string(groups) + ")");
}

void gather_rows(const Stream&, const TensorView& x, const TensorView& index, int64_t row, const TensorView& out) {
  const int32_t* idx = index.ptr<int32_t>();
  int64_t r = index.numel(), n = row ? x.numel() / row : 0;
  size_t bytes = size_t(row) * dtype_size(x.dtype);
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(out.data);
  std::atomic<int64_t> bad{-1};
  parallel_for(r, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, row)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      int64_t k = idx[i];
      if (k == -1) {  // no row: zeros
        std::memset(dst + i * bytes, 0, bytes);
        continue;
      }
      if (k < 0 || k >= n) {
        int64_t none = -1;
        bad.compare_exchange_strong(none, i);
        std::memset(dst + i * bytes, 0, bytes);
        continue;
      }
      std::memcpy(dst + i * bytes, src + k * bytes, bytes);
    }
  });
  if (bad >= 0)
    throw Error("ERR_BAD_DATA", "index " + std::to_string(idx[bad.load()]) + " at " + std::to_string(bad.load()) +
                                    " is outside [0, " + std::to_string(n) + ")");
}

void scatter_rows(const Stream&, const TensorView& y, const TensorView& index, int64_t row, bool accumulate, const TensorView& out) {
  const int32_t* idx = index.ptr<int32_t>();
  int64_t r = index.numel(), n = row ? out.numel() / row : 0;
  int64_t bad = -1;
  dispatch_float(y.dtype, "scatter_rows", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    const T* py = y.ptr<T>();
    T* po = out.ptr<T>();
    // Parallel over columns: every thread walks the rows in order, so sums are deterministic.
    parallel_for(row, 64, [&](int64_t c0, int64_t c1) {
      for (int64_t i = 0; i < r; i++) {
        int64_t k = idx[i];
        if (k < 0 || k >= n) continue;  // -1: no row; others: reported below
        for (int64_t c = c0; c < c1; c++) {
          auto v = E::load(py, i * row + c);
          E::store(po, k * row + c, accumulate ? E::load(po, k * row + c) + v : v);
        }
      }
    });
  });
  for (int64_t i = 0; i < r; i++)
    if (idx[i] < -1 || idx[i] >= n) {
      bad = i;
      break;
    }
  if (bad >= 0)
    throw Error("ERR_BAD_DATA", "index " + std::to_string(idx[bad]) + " at " + std::to_string(bad) + " is outside [0, " +
                                    std::to_string(n) + ")");
}

}  // namespace mixt::cpu
