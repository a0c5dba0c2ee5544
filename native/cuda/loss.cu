// CUDA cross-entropy rows (one block per row, one pass for max/sum/argmax with an online softmax),
// its in-place gradient, per-group sums; AdamW, sums of squares and the clip coefficient.
#include <cfloat>

#include "../kernels/loss.h"
#include "common.cuh"

namespace mixt::cuda {
namespace {

constexpr int kThreads = 256;

struct SoftmaxState {
  float max;   // running max
  float sum;   // sum of exp(x - max)
  int arg;     // first index of the max
};

__device__ __forceinline__ SoftmaxState merge(SoftmaxState a, SoftmaxState b) {
  if (b.max > a.max || (b.max == a.max && b.arg < a.arg)) {
    SoftmaxState t = a;
    a = b;
    b = t;
  }
  // a holds the larger max (or the equal max with the smaller index)
  float s = a.sum + (b.sum > 0.f ? b.sum * __expf(b.max - a.max) : 0.f);
  return {a.max, s, a.arg};
}

template <typename T>
__global__ void ce_rows_kernel(const T* x, const int32_t* tg, int64_t R, int64_t V, float* loss, float* lse, int32_t* correct, int* flag, int tag) {
  __shared__ SoftmaxState part[kThreads];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* row = x + r * V;
    SoftmaxState st{-FLT_MAX, 0.f, INT_MAX};
    for (int64_t c = threadIdx.x; c < V; c += kThreads) {
      float v = Elem<T>::load(row, c);
      if (v > st.max) {
        st.sum = st.sum * __expf(st.max - v) + 1.f;
        st.max = v;
        st.arg = int(c);
      } else {
        st.sum += __expf(v - st.max);
      }
    }
    part[threadIdx.x] = st;
    __syncthreads();
    for (int w = kThreads / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w) part[threadIdx.x] = merge(part[threadIdx.x], part[threadIdx.x + w]);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      SoftmaxState s = part[0];
      float l = s.max + logf(s.sum);
      lse[r] = l;
      int t = tg[r];
      if (t < -1 || t >= V) {
        report_fault(flag, tag, kFaultIndexRange);
        t = -1;
      }
      loss[r] = t < 0 ? 0.f : l - Elem<T>::load(row, t);
      correct[r] = t >= 0 && s.arg == t ? 1 : 0;
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void ce_backward_kernel(T* x, const int32_t* tg, const float* lse, const float* dloss, int64_t R, int64_t V) {
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    T* row = x + r * V;
    int t = tg[r];
    bool ignore = t < 0 || t >= V;
    float l = lse[r], d = dloss[r];
    for (int64_t c = threadIdx.x; c < V; c += kThreads) {
      float v = ignore ? 0.f : (__expf(Elem<T>::load(row, c) - l) - (c == t ? 1.f : 0.f)) * d;
      Elem<T>::store(row, c, v);
    }
  }
}

// Block g sums the rows of group g (in a fixed order: deterministic).
__global__ void group_sum_kernel(const float* values, const int32_t* ids, const int32_t* mask, int64_t n, float* sums, float* counts) {
  __shared__ float ps[kThreads], pc[kThreads];
  int g = blockIdx.x;
  float s = 0.f, c = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    if ((!mask || mask[i]) && ids[i] == g) {
      s += values[i];
      c += 1.f;
    }
  }
  ps[threadIdx.x] = s;
  pc[threadIdx.x] = c;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      ps[threadIdx.x] += ps[threadIdx.x + w];
      pc[threadIdx.x] += pc[threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    sums[g] = ps[0];
    counts[g] = pc[0];
  }
}

__global__ void check_ids_kernel(const int32_t* ids, const int32_t* mask, int64_t n, int64_t groups, int* flag, int tag) {
  MIXT_GRID_STRIDE(i, n) {
    if ((!mask || mask[i]) && (ids[i] < 0 || ids[i] >= groups)) report_fault(flag, tag, kFaultIndexRange);
  }
}

template <typename G, typename C>
__global__ void adamw_kernel(float* p, const G* g, float* m, float* v, int64_t n, float lr, float b1, float b2, float eps, float wd,
                             float bc1, float bc2, const float* scale, C* copy) {
  float sc = scale ? scale[0] : 1.f;
  MIXT_GRID_STRIDE(i, n) {
    float gi = Elem<G>::load(g, i) * sc;
    float mi = b1 * m[i] + (1.f - b1) * gi;
    float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float pi = p[i];
    pi -= lr * (wd * pi + (mi / bc1) / (sqrtf(vi / bc2) + eps));
    p[i] = pi;
    if (copy) Elem<C>::store(copy, i, pi);
  }
}

constexpr int kPartials = 256;

template <typename T>
__global__ void sumsq_partial(const T* x, int64_t n, float* part) {
  __shared__ float s[kThreads];
  float acc = 0.f;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(kPartials) * kThreads) {
    float v = Elem<T>::load(x, i);
    acc += v * v;
  }
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) part[blockIdx.x] = s[0];
}

__global__ void sumsq_finish(const float* part, float* out) {
  __shared__ float s[kPartials];
  s[threadIdx.x] = part[threadIdx.x];
  __syncthreads();
  for (int w = kPartials / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] += s[0];
}

__global__ void clip_kernel(const float* n2, float max_norm, float* out) {
  float v = n2[0];
  out[0] = isfinite(v) ? fminf(1.f, max_norm / (sqrtf(v) + 1e-6f)) : 0.f;
}

unsigned row_grid(int64_t rows) { return unsigned(rows < 1 ? 1 : rows > 65535 * 8 ? 65535 * 8 : rows); }

}  // namespace

void cross_entropy_rows(const Stream& s, const TensorView& logits, const TensorView& targets, const TensorView& loss, const TensorView& lse,
                        const TensorView& correct) {
  int64_t R = logits.rows(), V = logits.cols();
  if (!R) return;
  dispatch_gpu_float(logits.dtype, "crossEntropy", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    ce_rows_kernel<T><<<row_grid(R), kThreads, 0, stream_of(s)>>>(static_cast<const T*>(logits.data), static_cast<const int32_t*>(targets.data), R,
                                                                  V, static_cast<float*>(loss.data), static_cast<float*>(lse.data),
                                                                  static_cast<int32_t*>(correct.data), s.error_flag, s.op_tag);
  });
}

void cross_entropy_rows_backward(const Stream& s, const TensorView& logits, const TensorView& targets, const TensorView& lse, const TensorView& dloss) {
  int64_t R = logits.rows(), V = logits.cols();
  if (!R) return;
  dispatch_gpu_float(logits.dtype, "crossEntropyBackward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    ce_backward_kernel<T><<<row_grid(R), kThreads, 0, stream_of(s)>>>(static_cast<T*>(logits.data), static_cast<const int32_t*>(targets.data),
                                                                      static_cast<const float*>(lse.data), static_cast<const float*>(dloss.data), R, V);
  });
}

void group_sum(const Stream& s, const TensorView& values, const TensorView& ids, const TensorView& mask, int64_t groups, const TensorView& sums,
               const TensorView& counts) {
  int64_t n = values.numel();
  const int32_t* mk = static_cast<const int32_t*>(mask.data);
  if (n) check_ids_kernel<<<grid_for(n), 256, 0, stream_of(s)>>>(static_cast<const int32_t*>(ids.data), mk, n, groups, s.error_flag, s.op_tag);
  group_sum_kernel<<<unsigned(groups), kThreads, 0, stream_of(s)>>>(static_cast<const float*>(values.data), static_cast<const int32_t*>(ids.data),
                                                                     mk, n, static_cast<float*>(sums.data), static_cast<float*>(counts.data));
}

void adamw(const Stream& s, const TensorView& param, const TensorView& grad, const TensorView& m, const TensorView& v, const AdamArgs& a,
           const TensorView& grad_scale, const TensorView& copy) {
  int64_t n = param.numel();
  if (!n) return;
  if (param.dtype != DType::F32) fail("adamw: CUDA master weights are f32");
  float bc1 = float(1.0 - std::pow(a.beta1, a.step)), bc2 = float(1.0 - std::pow(a.beta2, a.step));
  auto launch = [&](auto* gt, auto* ct) {
    using G = std::remove_pointer_t<decltype(gt)>;
    using C = std::remove_pointer_t<decltype(ct)>;
    adamw_kernel<G, C><<<grid_for(n), 256, 0, stream_of(s)>>>(
        static_cast<float*>(param.data), static_cast<const G*>(grad.data), static_cast<float*>(m.data), static_cast<float*>(v.data), n,
        float(a.lr), float(a.beta1), float(a.beta2), float(a.eps), float(a.weight_decay), bc1, bc2,
        static_cast<const float*>(grad_scale.data), static_cast<C*>(copy.data));
  };
  auto with_copy = [&](auto* gt) {
    if (copy.data && copy.dtype == DType::BF16) launch(gt, static_cast<bf16*>(nullptr));
    else launch(gt, static_cast<float*>(nullptr));
  };
  dispatch_gpu_float(grad.dtype, "adamw", with_copy);
}

void sum_squares_into(const Stream& s, const TensorView& x, const TensorView& out) {
  cudaStream_t st = stream_of(s);
  float* part = nullptr;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&part), kPartials * sizeof(float), st);
  if (e != cudaSuccess) throw Error(e == cudaErrorMemoryAllocation ? "ERR_CUDA_OOM" : "ERR_CUDA", "sum_squares: workspace");
  dispatch_gpu_float(x.dtype, "sumSquares", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    sumsq_partial<T><<<kPartials, kThreads, 0, st>>>(static_cast<const T*>(x.data), x.numel(), part);
  });
  sumsq_finish<<<1, kPartials, 0, st>>>(part, static_cast<float*>(out.data));
  cudaFreeAsync(part, st);
}

void clip_coefficient(const Stream& s, const TensorView& norm_sq, double max_norm, const TensorView& out) {
  clip_kernel<<<1, 1, 0, stream_of(s)>>>(static_cast<const float*>(norm_sq.data), float(max_norm), static_cast<float*>(out.data));
}

}  // namespace mixt::cuda
