// CPU reference attention: exact softmax per row in double, scanning only each row's document
// (doc ids sorted) and checking the mask pair by pair; backward recomputes probabilities from the
// saved log-sum-exp, dQ by rows, dK/dV by keys (no races, deterministic).
#include "../kernels/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "parallel.h"
#include "scalar.h"

namespace mixt::cpu {
namespace {

struct Layout {
  const int32_t *doc, *span, *pos;
  std::vector<int64_t> lo, hi;  // candidate key range of each token (its document when ids are sorted)
};

Layout layout(const AttentionArgs& a) {
  Layout L{a.doc_ids.data ? a.doc_ids.ptr<int32_t>() : nullptr, a.span_ids.data ? a.span_ids.ptr<int32_t>() : nullptr,
           a.positions.data ? a.positions.ptr<int32_t>() : nullptr, {}, {}};
  const int64_t T = a.tokens;
  L.lo.assign(T, 0);
  L.hi.assign(T, T);
  bool sorted = L.doc != nullptr;
  for (int64_t i = 1; sorted && i < T; i++) sorted = L.doc[i] >= L.doc[i - 1];
  if (sorted) {
    for (int64_t i = 0, start = 0; i < T; i++) {
      if (i > 0 && L.doc[i] != L.doc[i - 1]) start = i;
      L.lo[i] = start;
    }
    for (int64_t i = T - 1, end = T; i >= 0; i--) {
      if (i < T - 1 && L.doc[i] != L.doc[i + 1]) end = i + 1;
      L.hi[i] = end;
    }
  }
  return L;
}


}  // namespace

void attention_forward(const Stream&, const AttentionArgs& a, const TensorView& out, const TensorView& lse) {
  Layout L = layout(a);
  const int64_t T = a.tokens, Hq = a.hq, Hk = a.hkv, D = a.dim, rep = Hq / Hk;
  dispatch_float(a.q.dtype, "attention", [&](auto* tag) {
    using T_ = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T_>;
    const T_ *q = a.q.ptr<T_>(), *k = a.k.ptr<T_>(), *v = a.v.ptr<T_>();
    T_* o = out.ptr<T_>();
    parallel_for(T * Hq, 4, [&](int64_t b, int64_t e) {
      std::vector<double> sc, acc(D), qi(D);
      for (int64_t w = b; w < e; w++) {
        const int64_t i = w / Hq, h = w % Hq, hk = h / rep;
        for (int64_t c = 0; c < D; c++) qi[c] = double(E::load(q, (i * Hq + h) * D + c));
        const int64_t j0 = L.lo[i], j1 = L.hi[i];
        sc.assign(size_t(j1 - j0), -std::numeric_limits<double>::infinity());
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = j0; j < j1; j++) {
          if (!attention_visible(L.doc, L.span, L.pos, a.causal, i, j)) continue;
          double s = 0;
          for (int64_t c = 0; c < D; c++) s += qi[c] * double(E::load(k, (j * Hk + hk) * D + c));
          s *= a.scale;
          sc[size_t(j - j0)] = s;
          mx = std::max(mx, s);
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        double l = 0;
        if (mx > -std::numeric_limits<double>::infinity()) {
          for (int64_t j = j0; j < j1; j++) {
            double s = sc[size_t(j - j0)];
            if (s == -std::numeric_limits<double>::infinity()) continue;
            double p = std::exp(s - mx);
            l += p;
            for (int64_t c = 0; c < D; c++) acc[c] += p * double(E::load(v, (j * Hk + hk) * D + c));
          }
        }
        for (int64_t c = 0; c < D; c++) E::store(o, (i * Hq + h) * D + c, typename E::acc(l > 0 ? acc[c] / l : 0.0));
        set_scalar(lse, h * T + i, l > 0 ? mx + std::log(l) : -std::numeric_limits<double>::infinity());
      }
    });
  });
}

void attention_backward(const Stream&, const AttentionArgs& a, const TensorView& out, const TensorView& dout, const TensorView& lse,
                        const TensorView& dq, const TensorView& dk, const TensorView& dv) {
  Layout L = layout(a);
  const int64_t T = a.tokens, Hq = a.hq, Hk = a.hkv, D = a.dim, rep = Hq / Hk;
  dispatch_float(a.q.dtype, "attentionBackward", [&](auto* tag) {
    using T_ = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T_>;
    const T_ *q = a.q.ptr<T_>(), *k = a.k.ptr<T_>(), *v = a.v.ptr<T_>(), *o = out.ptr<T_>(), *dO = dout.ptr<T_>();
    T_ *pdq = dq.ptr<T_>(), *pdk = dk.ptr<T_>(), *pdv = dv.ptr<T_>();
    auto ld = [&](const T_* p, int64_t idx) { return double(E::load(p, idx)); };
    // delta[h, i] = dO_i . O_i
    std::vector<double> delta(size_t(T * Hq));
    parallel_for(T * Hq, 64, [&](int64_t b, int64_t e) {
      for (int64_t w = b; w < e; w++) {
        const int64_t i = w / Hq, h = w % Hq;
        double s = 0;
        for (int64_t c = 0; c < D; c++) s += ld(dO, (i * Hq + h) * D + c) * ld(o, (i * Hq + h) * D + c);
        delta[size_t(h * T + i)] = s;
      }
    });
    auto prob = [&](int64_t i, int64_t h, int64_t j, double* score) {
      const int64_t hk = h / rep;
      double s = 0;
      for (int64_t c = 0; c < D; c++) s += ld(q, (i * Hq + h) * D + c) * ld(k, (j * Hk + hk) * D + c);
      *score = s * a.scale;
      double l = get_scalar(lse, h * T + i);
      return std::isfinite(l) ? std::exp(*score - l) : 0.0;
    };
    auto dp = [&](int64_t i, int64_t h, int64_t j) {  // dO_i . v_j
      const int64_t hk = h / rep;
      double s = 0;
      for (int64_t c = 0; c < D; c++) s += ld(dO, (i * Hq + h) * D + c) * ld(v, (j * Hk + hk) * D + c);
      return s;
    };
    // dQ by query rows
    parallel_for(T * Hq, 4, [&](int64_t b, int64_t e) {
      std::vector<double> acc(D);
      for (int64_t w = b; w < e; w++) {
        const int64_t i = w / Hq, h = w % Hq, hk = h / rep;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = L.lo[i]; j < L.hi[i]; j++) {
          if (!attention_visible(L.doc, L.span, L.pos, a.causal, i, j)) continue;
          double s, p = prob(i, h, j, &s);
          double ds = p * (dp(i, h, j) - delta[size_t(h * T + i)]);
          for (int64_t c = 0; c < D; c++) acc[c] += ds * ld(k, (j * Hk + hk) * D + c);
        }
        for (int64_t c = 0; c < D; c++) E::store(pdq, (i * Hq + h) * D + c, typename E::acc(acc[c] * a.scale));
      }
    });
    // dK, dV by key rows (summing over the query heads that share each kv head)
    parallel_for(T * Hk, 4, [&](int64_t b, int64_t e) {
      std::vector<double> ak(D), av(D);
      for (int64_t w = b; w < e; w++) {
        const int64_t j = w / Hk, hk = w % Hk;
        std::fill(ak.begin(), ak.end(), 0.0);
        std::fill(av.begin(), av.end(), 0.0);
        for (int64_t i = L.lo[j]; i < L.hi[j]; i++) {
          if (!attention_visible(L.doc, L.span, L.pos, a.causal, i, j)) continue;
          for (int64_t h = hk * rep; h < (hk + 1) * rep; h++) {
            double s, p = prob(i, h, j, &s);
            if (p == 0) continue;
            double ds = p * (dp(i, h, j) - delta[size_t(h * T + i)]);
            for (int64_t c = 0; c < D; c++) {
              ak[c] += ds * ld(q, (i * Hq + h) * D + c);
              av[c] += p * ld(dO, (i * Hq + h) * D + c);
            }
          }
        }
        for (int64_t c = 0; c < D; c++) {
          E::store(pdk, (j * Hk + hk) * D + c, typename E::acc(ak[c] * a.scale));
          E::store(pdv, (j * Hk + hk) * D + c, typename E::acc(av[c]));
        }
      }
    });
  });
}

void rope(const Stream&, const TensorView& x, const TensorView& positions, double theta, bool inverse, const TensorView& out) {
  const int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2), half = D / 2;
  const int32_t* pos = positions.ptr<int32_t>();
  dispatch_float(x.dtype, "rope", [&](auto* tag) {
    using T_ = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T_>;
    const T_* px = x.ptr<T_>();
    T_* po = out.ptr<T_>();
    parallel_for(T, 16, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; t++)
        for (int64_t c = 0; c < half; c++) {
          double ang = double(pos[t]) * std::pow(theta, -2.0 * double(c) / double(D));
          double cs = std::cos(ang), sn = inverse ? -std::sin(ang) : std::sin(ang);
          for (int64_t h = 0; h < H; h++) {
            const int64_t o = (t * H + h) * D;
            double x1 = double(E::load(px, o + c)), x2 = double(E::load(px, o + c + half));
            E::store(po, o + c, typename E::acc(x1 * cs - x2 * sn));
            E::store(po, o + c + half, typename E::acc(x1 * sn + x2 * cs));
          }
        }
    });
  });
}

void segment_ids(const Stream&, const TensorView& cu, const TensorView& out) {
  const int32_t* c = cu.ptr<int32_t>();
  int32_t* o = out.ptr<int32_t>();
  const int64_t docs = cu.numel() - 1, T = out.numel();
  if (c[0] != 0 || c[docs] != T) throw Error("ERR_BAD_DATA", "cu_seqlens must start at 0 and end at the token count " + std::to_string(T));
  // every boundary checked before any write: a value past T would otherwise write outside `out`
  for (int64_t d = 0; d < docs; d++)
    if (c[d + 1] < c[d] || c[d + 1] > T) throw Error("ERR_BAD_DATA", "cu_seqlens decreases or passes the token count at " + std::to_string(d + 1));
  for (int64_t d = 0; d < docs; d++)
    for (int64_t i = c[d]; i < c[d + 1]; i++) o[i] = int32_t(d);
}

}  // namespace mixt::cpu
