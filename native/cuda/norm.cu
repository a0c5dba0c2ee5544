// CUDA norms: one warp per row for statistics, normalisation and dx; weight/bias gradients in two
// deterministic passes (per row-chunk partial sums into a workspace, then a sum over chunks).
#include "../kernels/norm.h"
#include "common.cuh"

namespace mixt::cuda {
namespace {

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ int row_group(const int32_t* ids, int64_t r, int64_t groups, int* flag, int tag) {
  if (!ids) return 0;
  int g = ids[r];
  if (g < 0 || g >= groups) {
    report_fault(flag, tag, kFaultIndexRange);
    return -1;
  }
  return g;
}

template <typename T>
__global__ void norm_forward_kernel(NormKind kind, const T* x, const T* w, const T* b, const int32_t* ids, int64_t rows, int64_t d,
                                    int64_t groups, float eps, T* y, float* mean, float* rstd, int* flag, int tag) {
  int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    int lane = threadIdx.x % 32;
    int g = row_group(ids, r, groups, flag, tag);
    const T* xr = x + r * d;
    float mu = 0.f;
    if (kind == NormKind::Layer) {
      float s = 0.f;
      for (int64_t c = lane; c < d; c += 32) s += Elem<T>::load(xr, c);
      mu = warp_sum(s) / float(d);
    }
    float ss = 0.f;
    for (int64_t c = lane; c < d; c += 32) {
      float v = Elem<T>::load(xr, c) - mu;
      ss += v * v;
    }
    float rs = rsqrtf(warp_sum(ss) / float(d) + eps);
    if (lane == 0) {
      rstd[r] = rs;
      if (mean) mean[r] = mu;
    }
    for (int64_t c = lane; c < d; c += 32) {
      float v = g < 0 ? 0.f : (Elem<T>::load(xr, c) - mu) * rs * Elem<T>::load(w, g * d + c);
      if (b && g >= 0) v += Elem<T>::load(b, g * d + c);
      Elem<T>::store(y, r * d + c, v);
    }
  }
}

template <typename T>
__global__ void norm_dx_kernel(NormKind kind, const T* dy, const T* x, const T* w, const int32_t* ids, int64_t rows, int64_t d,
                               int64_t groups, const float* mean, const float* rstd, T* dx, int* flag, int tag) {
  int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    int lane = threadIdx.x % 32;
    int g = row_group(ids, r, groups, flag, tag);
    float mu = mean ? mean[r] : 0.f, rs = rstd[r];
    float s1 = 0.f, s2 = 0.f;
    if (g >= 0) {
      for (int64_t c = lane; c < d; c += 32) {
        float gw = Elem<T>::load(dy, r * d + c) * Elem<T>::load(w, g * d + c);
        s1 += gw * (Elem<T>::load(x, r * d + c) - mu) * rs;
        s2 += gw;
      }
    }
    s1 = warp_sum(s1) / float(d);
    s2 = warp_sum(s2) / float(d);
    for (int64_t c = lane; c < d; c += 32) {
      float v = 0.f;
      if (g >= 0) {
        float gw = Elem<T>::load(dy, r * d + c) * Elem<T>::load(w, g * d + c);
        float xh = (Elem<T>::load(x, r * d + c) - mu) * rs;
        v = rs * (gw - xh * s1 - (kind == NormKind::Layer ? s2 : 0.f));
      }
      Elem<T>::store(dx, r * d + c, v);
    }
  }
}

// Pass 1: thread = column, block y = row chunk; partial[chunk][g][c] (and bias part) in fp32.
template <typename T>
__global__ void norm_dw_partial(const T* dy, const T* x, const int32_t* ids, int64_t rows, int64_t d, int64_t groups, int64_t chunk_rows,
                                const float* mean, const float* rstd, float* pw, float* pb) {
  int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= d) return;
  int64_t r0 = int64_t(blockIdx.y) * chunk_rows, r1 = min(rows, r0 + chunk_rows);
  float* w_out = pw + int64_t(blockIdx.y) * groups * d;
  float* b_out = pb ? pb + int64_t(blockIdx.y) * groups * d : nullptr;
  for (int64_t g = 0; g < groups; g++) {
    w_out[g * d + c] = 0.f;
    if (b_out) b_out[g * d + c] = 0.f;
  }
  int cur = -1;
  float aw = 0.f, ab = 0.f;
  for (int64_t r = r0; r < r1; r++) {
    int g = ids ? ids[r] : 0;
    if (g < 0 || g >= groups) continue;
    if (g != cur) {
      if (cur >= 0) {
        w_out[cur * d + c] += aw;
        if (b_out) b_out[cur * d + c] += ab;
      }
      cur = g;
      aw = ab = 0.f;
    }
    float gy = Elem<T>::load(dy, r * d + c);
    aw += gy * (Elem<T>::load(x, r * d + c) - (mean ? mean[r] : 0.f)) * rstd[r];
    ab += gy;
  }
  if (cur >= 0) {
    w_out[cur * d + c] += aw;
    if (b_out) b_out[cur * d + c] += ab;
  }
}

// Pass 2: sum the chunks in order.
template <typename T>
__global__ void norm_dw_reduce(const float* pw, const float* pb, int64_t chunks, int64_t gd, T* dw, T* db) {
  MIXT_GRID_STRIDE(i, gd) {
    float sw = 0.f, sb = 0.f;
    for (int64_t k = 0; k < chunks; k++) {
      sw += pw[k * gd + i];
      if (pb) sb += pb[k * gd + i];
    }
    Elem<T>::store(dw, i, sw);
    if (db) Elem<T>::store(db, i, sb);
  }
}

template <typename T>
__global__ void swiglu_kernel(const T* gu, int64_t f, int64_t n, T* h) {
  MIXT_GRID_STRIDE(i, n) {
    int64_t r = i / f, c = i % f;
    float g = Elem<T>::load(gu, r * 2 * f + c), u = Elem<T>::load(gu, r * 2 * f + f + c);
    Elem<T>::store(h, i, g / (1.f + __expf(-g)) * u);
  }
}

template <typename T>
__global__ void swiglu_backward_kernel(const T* dh, const T* gu, int64_t f, int64_t n, T* dgu) {
  MIXT_GRID_STRIDE(i, n) {
    int64_t r = i / f, c = i % f;
    float dg, du;
    swiglu_grad<float>(Elem<T>::load(gu, r * 2 * f + c), Elem<T>::load(gu, r * 2 * f + f + c), Elem<T>::load(dh, i), &dg, &du);
    Elem<T>::store(dgu, r * 2 * f + c, dg);
    Elem<T>::store(dgu, r * 2 * f + f + c, du);
  }
}

template <typename T>
const T* cptr(const TensorView& v) { return v.data ? static_cast<const T*>(v.data) : nullptr; }

unsigned warp_grid(int64_t rows) {
  int64_t blocks = (rows + 7) / 8;  // 8 warps per block
  return unsigned(blocks < 1 ? 1 : blocks > 65535 * 4 ? 65535 * 4 : blocks);
}

}  // namespace

void norm_forward(const Stream& s, const NormArgs& a, const TensorView& y) {
  if (a.rows == 0 || a.dim == 0) return;
  dispatch_gpu_float(a.x.dtype, "norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    norm_forward_kernel<T><<<warp_grid(a.rows), 256, 0, stream_of(s)>>>(
        a.kind, cptr<T>(a.x), cptr<T>(a.weight), cptr<T>(a.bias), cptr<int32_t>(a.ids), a.rows, a.dim, a.groups, float(a.eps),
        static_cast<T*>(y.data), static_cast<float*>(a.mean.data), static_cast<float*>(a.rstd.data), s.error_flag, s.op_tag);
  });
}

void norm_backward(const Stream& s, const NormArgs& a, const TensorView& dy, const TensorView& dx, const TensorView& dweight,
                   const TensorView& dbias) {
  cudaStream_t st = stream_of(s);
  dispatch_gpu_float(a.x.dtype, "norm_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (a.rows > 0 && a.dim > 0)
      norm_dx_kernel<T><<<warp_grid(a.rows), 256, 0, st>>>(a.kind, cptr<T>(dy), cptr<T>(a.x), cptr<T>(a.weight), cptr<int32_t>(a.ids), a.rows,
                                                           a.dim, a.groups, cptr<float>(a.mean), cptr<float>(a.rstd), static_cast<T*>(dx.data),
                                                           s.error_flag, s.op_tag);
    int64_t gd = a.groups * a.dim;
    if (gd == 0) return;
    int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(256, (a.rows + 63) / 64));
    int64_t chunk_rows = (a.rows + chunks - 1) / chunks;
    if (chunk_rows == 0) chunk_rows = 1;
    bool bias = dbias.data != nullptr;
    float* ws = nullptr;
    size_t bytes = size_t(chunks * gd * (bias ? 2 : 1)) * sizeof(float);
    cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&ws), bytes, st);
    if (e != cudaSuccess) throw Error(e == cudaErrorMemoryAllocation ? "ERR_CUDA_OOM" : "ERR_CUDA", "norm_backward: workspace");
    float* pb = bias ? ws + chunks * gd : nullptr;
    dim3 grid(unsigned((a.dim + 255) / 256), unsigned(chunks));
    norm_dw_partial<T><<<grid, 256, 0, st>>>(cptr<T>(dy), cptr<T>(a.x), cptr<int32_t>(a.ids), a.rows, a.dim, a.groups, chunk_rows,
                                             cptr<float>(a.mean), cptr<float>(a.rstd), ws, pb);
    norm_dw_reduce<T><<<grid_for(gd), 256, 0, st>>>(ws, pb, chunks, gd, static_cast<T*>(dweight.data), bias ? static_cast<T*>(dbias.data) : nullptr);
    cudaFreeAsync(ws, st);
  });
}

void swiglu_forward(const Stream& s, const TensorView& gu, int64_t f, const TensorView& h) {
  int64_t n = h.numel();
  if (!n) return;
  dispatch_gpu_float(gu.dtype, "swiglu", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    swiglu_kernel<T><<<grid_for(n), 256, 0, stream_of(s)>>>(cptr<T>(gu), f, n, static_cast<T*>(h.data));
  });
}

void swiglu_backward(const Stream& s, const TensorView& dh, const TensorView& gu, int64_t f, const TensorView& dgu) {
  int64_t n = dh.numel();
  if (!n) return;
  dispatch_gpu_float(gu.dtype, "swiglu_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    swiglu_backward_kernel<T><<<grid_for(n), 256, 0, stream_of(s)>>>(cptr<T>(dh), cptr<T>(gu), f, n, static_cast<T*>(dgu.data));
  });
}

}  // namespace mixt::cuda
