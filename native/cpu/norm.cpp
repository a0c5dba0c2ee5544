#include "../kernels/norm.h"

#include <vector>

#include "parallel.h"
#include "scalar.h"

namespace mixt::cpu {
namespace {

int32_t group_of(const NormArgs& a, int64_t r) {
  if (!a.ids.data) return 0;
  int32_t g = a.ids.ptr<int32_t>()[r];
  if (g < 0 || g >= a.groups) throw Error("ERR_BAD_DATA", "group id " + std::to_string(g) + " of row " + std::to_string(r) +
                                                              " is outside [0, " + std::to_string(a.groups) + ")");
  return g;
}

// Row statistics are f32, or f64 for f64 tensors (exact gradient checks): scalar.h.

}  // namespace

void norm_forward(const Stream&, const NormArgs& a, const TensorView& y) {
  dispatch_float(a.x.dtype, "norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    using A = double;
    const T *x = a.x.ptr<T>(), *w = a.weight.ptr<T>(), *b = a.bias.data ? a.bias.ptr<T>() : nullptr;
    T* py = y.ptr<T>();
    const bool has_mean = a.mean.data != nullptr;
    const int64_t d = a.dim;
    parallel_for(a.rows, std::max<int64_t>(1, 2048 / std::max<int64_t>(1, d)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        int32_t g = group_of(a, r);
        const int64_t o = r * d;
        A mu = 0;
        if (a.kind == NormKind::Layer) {
          for (int64_t c = 0; c < d; c++) mu += A(E::load(x, o + c));
          mu /= A(d);
        }
        A ss = 0;
        for (int64_t c = 0; c < d; c++) {
          A v = A(E::load(x, o + c)) - mu;
          ss += v * v;
        }
        A rs = 1.0 / std::sqrt(ss / A(d) + a.eps);
        if (has_mean) set_scalar(a.mean, r, mu);
        set_scalar(a.rstd, r, rs);
        rs = get_scalar(a.rstd, r);  // normalise with the stored value, as backward will
        if (has_mean) mu = get_scalar(a.mean, r);
        for (int64_t c = 0; c < d; c++) {
          A v = (A(E::load(x, o + c)) - mu) * rs * A(E::load(w, g * d + c));
          if (b) v += A(E::load(b, g * d + c));
          E::store(py, o + c, typename E::acc(v));
        }
      }
    });
  });
}

void norm_backward(const Stream&, const NormArgs& a, const TensorView& dy, const TensorView& dx, const TensorView& dweight,
                   const TensorView& dbias) {
  dispatch_float(a.x.dtype, "norm_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    using A = double;
    const T *x = a.x.ptr<T>(), *w = a.weight.ptr<T>(), *pdy = dy.ptr<T>();
    T* pdx = dx.ptr<T>();
    const bool has_mean = a.mean.data != nullptr;
    const int64_t d = a.dim;
    const bool layer = a.kind == NormKind::Layer;
    // xhat is recomputed from the saved statistics.
    auto xhat = [&](int64_t r, int64_t c) { return (A(E::load(x, r * d + c)) - (has_mean ? get_scalar(a.mean, r) : 0.0)) * get_scalar(a.rstd, r); };
    parallel_for(a.rows, std::max<int64_t>(1, 2048 / std::max<int64_t>(1, d)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        int32_t g = group_of(a, r);
        A s1 = 0, s2 = 0;  // sum(dy w xhat), sum(dy w)
        for (int64_t c = 0; c < d; c++) {
          A gw = A(E::load(pdy, r * d + c)) * A(E::load(w, g * d + c));
          s1 += gw * xhat(r, c);
          s2 += gw;
        }
        s1 /= A(d);
        s2 /= A(d);
        for (int64_t c = 0; c < d; c++) {
          A gw = A(E::load(pdy, r * d + c)) * A(E::load(w, g * d + c));
          A v = get_scalar(a.rstd, r) * (gw - xhat(r, c) * s1 - (layer ? s2 : 0.0));
          E::store(pdx, r * d + c, typename E::acc(v));
        }
      }
    });
    // weight (and bias) gradients: per column, rows in order, so the sums are deterministic.
    T* pdw = dweight.ptr<T>();
    T* pdb = dbias.data ? dbias.ptr<T>() : nullptr;
    parallel_for(d, 16, [&](int64_t c0, int64_t c1) {
      std::vector<A> accw(size_t(a.groups * (c1 - c0)), 0.0), accb(pdb ? accw.size() : 0, 0.0);
      for (int64_t r = 0; r < a.rows; r++) {
        int32_t g = a.ids.data ? a.ids.ptr<int32_t>()[r] : 0;
        if (g < 0 || g >= a.groups) continue;  // reported by the row pass
        for (int64_t c = c0; c < c1; c++) {
          A gy = A(E::load(pdy, r * d + c));
          accw[size_t(g * (c1 - c0) + c - c0)] += gy * xhat(r, c);
          if (pdb) accb[size_t(g * (c1 - c0) + c - c0)] += gy;
        }
      }
      for (int64_t g = 0; g < a.groups; g++)
        for (int64_t c = c0; c < c1; c++) {
          E::store(pdw, g * d + c, typename E::acc(accw[size_t(g * (c1 - c0) + c - c0)]));
          if (pdb) E::store(pdb, g * d + c, typename E::acc(accb[size_t(g * (c1 - c0) + c - c0)]));
        }
    });
  });
}

void swiglu_forward(const Stream&, const TensorView& gu, int64_t f, const TensorView& h) {
  dispatch_float(gu.dtype, "swiglu", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    using A = typename E::acc;
    const T* p = gu.ptr<T>();
    T* o = h.ptr<T>();
    parallel_for(h.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        int64_t r = i / f, c = i % f;
        A g = E::load(p, r * 2 * f + c), u = E::load(p, r * 2 * f + f + c);
        E::store(o, i, g / (A(1) + m_exp(-g)) * u);
      }
    });
  });
}

void swiglu_backward(const Stream&, const TensorView& dh, const TensorView& gu, int64_t f, const TensorView& dgu) {
  dispatch_float(gu.dtype, "swiglu_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    using A = typename E::acc;
    const T *p = gu.ptr<T>(), *pd = dh.ptr<T>();
    T* o = dgu.ptr<T>();
    parallel_for(dh.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        int64_t r = i / f, c = i % f;
        A dg, du;
        swiglu_grad<A>(E::load(p, r * 2 * f + c), E::load(p, r * 2 * f + f + c), E::load(pd, i), &dg, &du);
        E::store(o, r * 2 * f + c, dg);
        E::store(o, r * 2 * f + f + c, du);
      }
    });
  });
}

}  // namespace mixt::cpu
