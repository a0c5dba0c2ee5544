#include "../kernels/elementwise.h"
#include "common.cuh"

namespace mixt::cuda {
namespace {

template <typename T>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n, int64_t nb) {
  using E = Elem<T>;
  MIXT_GRID_STRIDE(i, n) { E::store(out, i, apply_binary(op, E::load(a, i), E::load(b, nb == n ? i : i % nb))); }
}

template <typename T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* out, int64_t n) {
  using E = Elem<T>;
  MIXT_GRID_STRIDE(i, n) { E::store(out, i, apply_unary(op, E::load(x, i))); }
}

template <typename T>
__global__ void axpby_kernel(float alpha, const T* x, float beta, const T* y, T* out, int64_t n) {
  using E = Elem<T>;
  MIXT_GRID_STRIDE(i, n) { E::store(out, i, alpha * E::load(x, i) + (y ? beta * E::load(y, i) : beta)); }
}

template <typename S, typename D>
__global__ void cast_kernel(const S* x, D* out, int64_t n) {
  MIXT_GRID_STRIDE(i, n) {
    if constexpr (std::is_same_v<S, int32_t> && std::is_same_v<D, int32_t>) out[i] = x[i];
    else if constexpr (std::is_same_v<S, int32_t>) Elem<D>::store(out, i, float(x[i]));
    else if constexpr (std::is_same_v<D, int32_t>) out[i] = int32_t(Elem<S>::load(x, i));
    else Elem<D>::store(out, i, Elem<S>::load(x, i));
  }
}

template <typename T>
__global__ void fill_kernel(T* out, float v, int64_t n) {
  MIXT_GRID_STRIDE(i, n) { Elem<T>::store(out, i, v); }
}
__global__ void fill_i32_kernel(int32_t* out, int32_t v, int64_t n) {
  MIXT_GRID_STRIDE(i, n) { out[i] = v; }
}

template <typename T>
const T* cptr(const TensorView& v) { return static_cast<const T*>(v.data); }
template <typename T>
T* mptr(const TensorView& v) { return static_cast<T*>(v.data); }

}  // namespace

void binary(const Stream& s, BinaryOp op, const TensorView& a, const TensorView& b, const TensorView& out) {
  int64_t n = a.numel();
  if (!n) return;
  dispatch_gpu_float(a.dtype, "binary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    binary_kernel<T><<<grid_for(n), 256, 0, stream_of(s)>>>(op, cptr<T>(a), cptr<T>(b), mptr<T>(out), n, b.numel());
  });
}

void unary(const Stream& s, UnaryOp op, const TensorView& x, const TensorView& out) {
  int64_t n = x.numel();
  if (!n) return;
  dispatch_gpu_float(x.dtype, "unary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    unary_kernel<T><<<grid_for(n), 256, 0, stream_of(s)>>>(op, cptr<T>(x), mptr<T>(out), n);
  });
}

void axpby(const Stream& s, double alpha, const TensorView& x, double beta, const TensorView* y, const TensorView& out) {
  int64_t n = x.numel();
  if (!n) return;
  dispatch_gpu_float(x.dtype, "axpby", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    axpby_kernel<T><<<grid_for(n), 256, 0, stream_of(s)>>>(float(alpha), cptr<T>(x), float(beta),
                                                            y ? cptr<T>(*y) : nullptr, mptr<T>(out), n);
  });
}

void cast(const Stream& s, const TensorView& x, const TensorView& out) {
  int64_t n = x.numel();
  if (!n) return;
  auto with_types = [&](auto* st, auto* dt) {
    using S = std::remove_pointer_t<decltype(st)>;
    using D = std::remove_pointer_t<decltype(dt)>;
    cast_kernel<S, D><<<grid_for(n), 256, 0, stream_of(s)>>>(cptr<S>(x), mptr<D>(out), n);
  };
  auto with_dst = [&](auto* st) {
    switch (out.dtype) {
      case DType::F32: return with_types(st, static_cast<float*>(nullptr));
      case DType::BF16: return with_types(st, static_cast<bf16*>(nullptr));
      case DType::I32: return with_types(st, static_cast<int32_t*>(nullptr));
      default: fail("cast: f64 is not supported on CUDA");
    }
  };
  switch (x.dtype) {
    case DType::F32: return with_dst(static_cast<float*>(nullptr));
    case DType::BF16: return with_dst(static_cast<bf16*>(nullptr));
    case DType::I32: return with_dst(static_cast<int32_t*>(nullptr));
    default: fail("cast: f64 is not supported on CUDA");
  }
}

void fill(const Stream& s, const TensorView& out, double value) {
  int64_t n = out.numel();
  if (!n) return;
  if (out.dtype == DType::I32) {
    fill_i32_kernel<<<grid_for(n), 256, 0, stream_of(s)>>>(mptr<int32_t>(out), int32_t(value), n);
    return;
  }
  dispatch_gpu_float(out.dtype, "fill", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fill_kernel<T><<<grid_for(n), 256, 0, stream_of(s)>>>(mptr<T>(out), float(value), n);
  });
}

void copy(const Stream& s, const TensorView& src, const TensorView& dst) {
  size_t n = src.nbytes();
  if (!n) return;
  cudaError_t e = cudaMemcpyAsync(dst.data, src.data, n, cudaMemcpyDeviceToDevice, stream_of(s));
  if (e != cudaSuccess) throw Error("ERR_CUDA", std::string("copy: ") + cudaGetErrorString(e));
}

}  // namespace mixt::cuda
