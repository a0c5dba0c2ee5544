#include "../kernels/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "parallel.h"
#include "scalar.h"

namespace mixt::cpu {

void topk_rows(const Stream&, const TopkRowsArgs& a, const TensorView& out) {
  int32_t* o = out.ptr<int32_t>();
  parallel_for(a.rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> idx(static_cast<size_t>(a.cols));
    for (int64_t r = r0; r < r1; r++) {
      std::iota(idx.begin(), idx.end(), 0);
      auto score = [&](int32_t c) { return get_scalar(a.scores, r * a.row_stride + c * a.col_stride); };
      // larger score first; equal scores: lower index first (stable); NaN counts as smallest
      auto better = [&](int32_t x, int32_t y) {
        double sx = score(x), sy = score(y);
        if (std::isnan(sx) != std::isnan(sy)) return std::isnan(sy);
        return sx > sy || (!(sx < sy) && x < y);
      };
      std::nth_element(idx.begin(), idx.begin() + (a.k - 1), idx.end(), better);
      std::sort(idx.begin(), idx.begin() + a.k);
      for (int64_t j = 0; j < a.k; j++) o[r * a.k + j] = int32_t(a.flat ? r * a.cols + idx[size_t(j)] : idx[size_t(j)]);
    }
  });
}

void router_topk(const Stream&, const RouterArgs& a, const TensorView& probs, const TensorView& lse, const TensorView& experts,
                 const TensorView& gates) {
  const int64_t E = a.experts, K = a.k;
  int32_t* ex = experts.ptr<int32_t>();
  parallel_for(a.tokens, 16, [&](int64_t t0, int64_t t1) {
    std::vector<double> p(static_cast<size_t>(E));
    std::vector<int32_t> order(static_cast<size_t>(E));
    for (int64_t t = t0; t < t1; t++) {
      double mx = -INFINITY;
      for (int64_t e = 0; e < E; e++) mx = std::max(mx, get_scalar(a.logits, t * E + e));
      double s = 0;
      for (int64_t e = 0; e < E; e++) s += std::exp(get_scalar(a.logits, t * E + e) - mx);
      set_scalar(lse, t, mx + std::log(s));
      for (int64_t e = 0; e < E; e++) {
        double l = get_scalar(a.logits, t * E + e);
        p[size_t(e)] = a.gate == GateKind::Softmax ? std::exp(l - mx) / s : 1.0 / (1.0 + std::exp(-l));
        set_scalar(probs, t * E + e, p[size_t(e)]);
      }
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int32_t x, int32_t y) {
        return p[size_t(x)] > p[size_t(y)] || (p[size_t(x)] == p[size_t(y)] && x < y);
      });
      double sum = 0;
      for (int64_t j = 0; j < K; j++) sum += p[size_t(order[size_t(j)])];
      for (int64_t j = 0; j < K; j++) {
        ex[t * K + j] = order[size_t(j)];
        double g = p[size_t(order[size_t(j)])];
        set_scalar(gates, t * K + j, a.renormalize ? g / sum : g);
      }
    }
  });
}

void router_backward(const Stream&, const RouterArgs& a, const TensorView& probs, const TensorView& lse, const TensorView& experts,
                     const TensorView& gates, const TensorView& dgates, const TensorView& dprobs, double z, const TensorView& dlogits) {
  const int64_t E = a.experts, K = a.k;
  const int32_t* ex = experts.ptr<int32_t>();
  // chosen experts index probs and dprobs: a value outside [0, E) is bad data, never an address
  for (int64_t i = 0; i < a.tokens * K; i++)
    if (ex[i] < 0 || ex[i] >= E)
      throw Error("ERR_BAD_DATA", "expert " + std::to_string(ex[i]) + " at " + std::to_string(i) + " is outside [0, " + std::to_string(E) + ")");
  parallel_for(a.tokens, 16, [&](int64_t t0, int64_t t1) {
    std::vector<double> dp(static_cast<size_t>(E));
    for (int64_t t = t0; t < t1; t++) {
      for (int64_t e = 0; e < E; e++) dp[size_t(e)] = dprobs.data ? get_scalar(dprobs, t * E + e) : 0.0;
      if (dgates.data) {
        double sum = 0, gdot = 0;
        for (int64_t j = 0; j < K; j++) {
          sum += get_scalar(probs, t * E + ex[t * K + j]);
          gdot += get_scalar(dgates, t * K + j) * get_scalar(gates, t * K + j);
        }
        for (int64_t j = 0; j < K; j++) {
          double dg = get_scalar(dgates, t * K + j);
          dp[size_t(ex[t * K + j])] += a.renormalize ? (dg - gdot) / sum : dg;
        }
      }
      double pdp = 0;
      for (int64_t e = 0; e < E; e++) pdp += get_scalar(probs, t * E + e) * dp[size_t(e)];
      double l = get_scalar(lse, t);
      for (int64_t e = 0; e < E; e++) {
        double p = get_scalar(probs, t * E + e);
        double d = a.gate == GateKind::Softmax ? p * (dp[size_t(e)] - pdp) : dp[size_t(e)] * p * (1 - p);
        if (z != 0) d += z * 2 * l * std::exp(get_scalar(a.logits, t * E + e) - l);
        set_scalar(dlogits, t * E + e, d);
      }
    }
  });
}

void row_scale(const Stream&, const TensorView& x, const TensorView& w, const TensorView& y) {
  const int64_t R = x.rows(), C = x.cols();
  dispatch_float(x.dtype, "rowScale", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    const T* px = x.ptr<T>();
    T* py = y.ptr<T>();
    parallel_for(R, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, C)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        double s = get_scalar(w, r);
        for (int64_t c = 0; c < C; c++) E::store(py, r * C + c, typename E::acc(double(E::load(px, r * C + c)) * s));
      }
    });
  });
}

void row_dot(const Stream&, const TensorView& a, const TensorView& b, const TensorView& out) {
  const int64_t R = a.rows(), C = a.cols();
  dispatch_float(a.dtype, "rowDot", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    const T *pa = a.ptr<T>(), *pb = b.ptr<T>();
    parallel_for(R, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, C)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += double(E::load(pa, r * C + c)) * double(E::load(pb, r * C + c));
        set_scalar(out, r, s);
      }
    });
  });
}

void slot_tokens(const Stream&, const TensorView& slots, int64_t k, const TensorView& experts, int64_t noop, const TensorView& tokens) {
  const int32_t* sl = slots.ptr<int32_t>();
  const int32_t* ex = experts.data ? experts.ptr<int32_t>() : nullptr;
  int32_t* tk = tokens.ptr<int32_t>();
  const int64_t n_ex = experts.data ? experts.numel() : 0;
  int64_t bad = -1;
  for (int64_t i = 0; i < slots.numel(); i++) {
    int32_t a = sl[i];
    if (ex && a >= n_ex) {  // an assignment with no expert entry: bad data
      if (bad < 0) bad = i;
      tk[i] = -1;
      continue;
    }
    tk[i] = a < 0 || (ex && noop >= 0 && ex[a] == noop) ? -1 : int32_t(a / k);
  }
  if (bad >= 0)
    throw Error("ERR_BAD_DATA", "slot " + std::to_string(bad) + " holds assignment " + std::to_string(sl[bad]) + ", outside the " +
                                    std::to_string(n_ex) + " expert entries");
}

void assignment_priority(const Stream&, const TensorView& rows, int64_t tokens, int64_t k, const TensorView& order) {
  const int32_t* rw = rows.data ? rows.ptr<int32_t>() : nullptr;
  int32_t* out = order.ptr<int32_t>();
  for (int64_t i = 0; i < tokens * k; i++) {
    int64_t j = i / tokens, r = i % tokens;
    out[i] = int32_t((rw ? rw[r] : r) * k + j);
  }
}

void capacity_slots(const Stream&, const TensorView& perm, const TensorView& offsets, int64_t capacity, const TensorView& order,
                    const TensorView& slots) {
  const int32_t* p = perm.ptr<int32_t>();
  const int32_t* off = offsets.ptr<int32_t>();
  const int32_t* ord = order.data ? order.ptr<int32_t>() : nullptr;
  int32_t* out = slots.ptr<int32_t>();
  const int64_t E = offsets.numel() - 1, n = perm.numel();
  // offsets index perm: they must rise from >= 0 to at most its length, checked before any read
  for (int64_t e = 0; e <= E; e++)
    if (off[e] < 0 || off[e] > n || (e > 0 && off[e] < off[e - 1]))
      throw Error("ERR_BAD_DATA", "group offsets must rise from 0 to at most " + std::to_string(n) + " (offsets[" + std::to_string(e) +
                                      "] = " + std::to_string(off[e]) + ")");
  for (int64_t i = 0; i < E * capacity; i++) {
    int64_t e = i / capacity, j = i % capacity;
    int64_t at = off[e] + j;
    int32_t a = at < off[e + 1] ? p[at] : -1;
    // with an order, perm holds positions in it: one outside is bad data
    if (ord && a >= 0 && a >= n) throw Error("ERR_BAD_DATA", "perm[" + std::to_string(at) + "] = " + std::to_string(a) + " is outside the order of " + std::to_string(n));
    out[i] = ord && a >= 0 ? ord[a] : a;
  }
}

void choice_gate_index(const Stream&, const TensorView& chosen, int64_t experts, const TensorView& out) {
  const int32_t* c = chosen.ptr<int32_t>();
  int32_t* o = out.ptr<int32_t>();
  const int64_t per = chosen.numel() / std::max<int64_t>(1, experts);
  for (int64_t i = 0; i < chosen.numel(); i++) o[i] = int32_t(int64_t(c[i]) * experts + i / per);
}

}  // namespace mixt::cpu
