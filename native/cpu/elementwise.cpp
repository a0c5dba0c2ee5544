#include "../kernels/elementwise.h"

#include "parallel.h"

namespace mixt::cpu {
namespace {
constexpr int64_t kGrain = 1 << 14;

template <typename T, typename F>
void map(int64_t n, F f) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) f(i);
  });
}
}  // namespace

void binary(const Stream&, BinaryOp op, const TensorView& a, const TensorView& b, const TensorView& out) {
  dispatch_float(a.dtype, "binary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    const T* pa = a.ptr<T>();
    const T* pb = b.ptr<T>();
    T* po = out.ptr<T>();
    int64_t nb = b.numel();
    map<T>(a.numel(), [&](int64_t i) { E::store(po, i, apply_binary(op, E::load(pa, i), E::load(pb, i % nb))); });
  });
}

void unary(const Stream&, UnaryOp op, const TensorView& x, const TensorView& out) {
  dispatch_float(x.dtype, "unary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    const T* px = x.ptr<T>();
    T* po = out.ptr<T>();
    map<T>(x.numel(), [&](int64_t i) { E::store(po, i, apply_unary(op, E::load(px, i))); });
  });
}

void axpby(const Stream&, double alpha, const TensorView& x, double beta, const TensorView* y, const TensorView& out) {
  dispatch_float(x.dtype, "axpby", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using E = Elem<T>;
    using A = typename E::acc;
    const T* px = x.ptr<T>();
    const T* py = y ? y->ptr<T>() : nullptr;
    T* po = out.ptr<T>();
    A al = A(alpha), be = A(beta);
    map<T>(x.numel(), [&](int64_t i) {
      A v = al * E::load(px, i) + (py ? be * E::load(py, i) : be);
      E::store(po, i, v);
    });
  });
}

void cast(const Stream&, const TensorView& x, const TensorView& out) {
  int64_t n = x.numel();
  auto convert = [&](auto* src_tag, auto* dst_tag) {
    using S = std::remove_pointer_t<decltype(src_tag)>;
    using D = std::remove_pointer_t<decltype(dst_tag)>;
    const S* ps = x.ptr<S>();
    D* pd = out.ptr<D>();
    map<S>(n, [&](int64_t i) {
      if constexpr (std::is_same_v<S, double> && std::is_same_v<D, double>) pd[i] = ps[i];
      else if constexpr (std::is_same_v<S, double>) Elem<D>::store(pd, i, float(ps[i]));
      else if constexpr (std::is_same_v<D, double>) pd[i] = double(Elem<S>::load(ps, i));
      else if constexpr (std::is_same_v<S, int32_t> || std::is_same_v<D, int32_t>) {
        if constexpr (std::is_same_v<S, int32_t> && std::is_same_v<D, int32_t>) pd[i] = ps[i];
        else if constexpr (std::is_same_v<S, int32_t>) Elem<D>::store(pd, i, float(ps[i]));
        else pd[i] = int32_t(Elem<S>::load(ps, i));
      } else Elem<D>::store(pd, i, Elem<S>::load(ps, i));
    });
  };
  auto with_dst = [&](auto* src_tag) {
    switch (out.dtype) {
      case DType::F32: return convert(src_tag, static_cast<float*>(nullptr));
      case DType::F64: return convert(src_tag, static_cast<double*>(nullptr));
      case DType::BF16: return convert(src_tag, static_cast<bf16*>(nullptr));
      case DType::I32: return convert(src_tag, static_cast<int32_t*>(nullptr));
    }
  };
  switch (x.dtype) {
    case DType::F32: return with_dst(static_cast<float*>(nullptr));
    case DType::F64: return with_dst(static_cast<double*>(nullptr));
    case DType::BF16: return with_dst(static_cast<bf16*>(nullptr));
    case DType::I32: return with_dst(static_cast<int32_t*>(nullptr));
  }
}

void fill(const Stream&, const TensorView& out, double value) {
  int64_t n = out.numel();
  switch (out.dtype) {
    case DType::I32: {
      int32_t v = int32_t(value);
      int32_t* p = out.ptr<int32_t>();
      return map<int32_t>(n, [&](int64_t i) { p[i] = v; });
    }
    case DType::F64: {
      double* p = out.ptr<double>();
      return map<double>(n, [&](int64_t i) { p[i] = value; });
    }
    default:
      dispatch_float(out.dtype, "fill", [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        T* p = out.ptr<T>();
        map<T>(n, [&](int64_t i) { Elem<T>::store(p, i, float(value)); });
      });
  }
}

void copy(const Stream&, const TensorView& src, const TensorView& dst) {
  size_t n = src.nbytes();
  const char* s = static_cast<const char*>(src.data);
  char* d = static_cast<char*>(dst.data);
  parallel_for(int64_t(n), 1 << 20, [&](int64_t b, int64_t e) { std::memcpy(d + b, s + b, size_t(e - b)); });
}

}  // namespace mixt::cpu
