// CUDA attention, flash style: tiled over queries and keys with an online softmax, no T x T matrix
// in memory, the row log-sum-exp saved; the backward recomputes probabilities (dQ by query tiles,
// dK/dV by key tiles: deterministic, no atomics). Four threads share a query (or key) row, each
// holding DPT of its D <= 4 * DPT dimensions in registers; dot products are reduced across the four
// with shuffles. Key (query) tiles that no pair of the current tile can see are skipped: disjoint
// document ranges, or all keys after all queries when no query is in an image span.
// This is the portable, exact-fp32-arithmetic path (f32 and bf16 storage) and the default; the
// tensor-core kernels are opt-in: mma_attention.cu (MIXT_MMA_ATTENTION=1, sm_80+, forward and
// backward) and hopper_attention.cu (MIXT_HOPPER_ATTENTION=1, sm_90, forward); MIXT_ATTENTION=portable
// forces this path whatever is enabled.
#include <cfloat>
#include <cstdlib>
#include <string>

#include "../kernels/attention.h"
#include "common.cuh"
#include "hopper_attention.h"
#include "mma_attention.h"

namespace mixt::cuda {
namespace {

constexpr int kRows = 64;     // query (or key) rows per block
constexpr int kThreads = 256;  // 4 threads per row
constexpr int kTile = 32;     // key (or query) rows staged in shared memory per step

struct Ids {
  const int32_t *doc, *span, *pos;
};

__device__ __forceinline__ int64_t posof(const Ids& ids, int64_t i) { return ids.pos ? ids.pos[i] : i; }

// Summary of a range of rows for tile skipping.
struct RangeInfo {
  int32_t doc_min, doc_max;
  int64_t pos_min, pos_max;
  int any_span;
};

__device__ __forceinline__ RangeInfo summarize(const Ids& ids, int64_t r0, int64_t r1, RangeInfo* shared) {
  // thread 0 scans (ranges are at most 64 rows)
  if (threadIdx.x == 0) {
    int32_t dmin = INT_MAX, dmax = INT_MIN;
    int64_t pmin = INT64_MAX, pmax = INT64_MIN;
    int span = 0;
    for (int64_t r = r0; r < r1; r++) {
      int32_t d = ids.doc ? ids.doc[r] : 0;
      dmin = min(dmin, d);
      dmax = max(dmax, d);
      int64_t p = posof(ids, r);
      pmin = min(pmin, p);
      pmax = max(pmax, p);
      if (ids.span && ids.span[r] >= 0) span = 1;
    }
    shared->doc_min = dmin;
    shared->doc_max = dmax;
    shared->pos_min = pmin;
    shared->pos_max = pmax;
    shared->any_span = span;
  }
  __syncthreads();
  RangeInfo s = *shared;
  __syncthreads();
  return s;
}

// Can any query of q see any key of k?
__device__ __forceinline__ bool may_see(const RangeInfo& q, const RangeInfo& k, bool causal) {
  if (q.doc_max < k.doc_min || k.doc_max < q.doc_min) return false;
  if (causal && k.pos_min > q.pos_max && !q.any_span) return false;
  return true;
}

__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  v += __shfl_xor_sync(0xffffffffu, v, 2);
  return v;
}

// Stages rows [r0, r0 + kTile) of head h of two [T, H, D] tensors into shared memory as fp32
// (zero past the end), the first multiplied by `scale_a`.
template <typename T, int DPT>
__device__ __forceinline__ void stage_pair(float (&A)[kTile][4 * DPT + 1], float (&B)[kTile][4 * DPT + 1], const T* a, const T* b, int64_t r0,
                                           int64_t Tn, int H, int h, int D, float scale_a) {
  for (int e = threadIdx.x; e < kTile * 4 * DPT; e += kThreads) {
    int r = e / (4 * DPT), d = e % (4 * DPT);
    int64_t j = r0 + r;
    bool ok = j < Tn && d < D;
    A[r][d] = ok ? Elem<T>::load(a, (j * H + h) * D + d) * scale_a : 0.f;
    B[r][d] = ok ? Elem<T>::load(b, (j * H + h) * D + d) : 0.f;
  }
}

template <typename T, int DPT>
__global__ void __launch_bounds__(kThreads, 2) forward_kernel(const T* q, const T* k, const T* v, Ids ids, bool causal, float scale, int64_t Tn,
                                                         int Hq, int Hk, int D, T* out, float* lse) {
  __shared__ float Ks[kTile][4 * DPT + 1];
  __shared__ float Vs[kTile][4 * DPT + 1];
  __shared__ RangeInfo info[2];
  const int h = blockIdx.y, hk = h / (Hq / Hk);
  const int64_t q0 = int64_t(blockIdx.x) * kRows, q1 = min(Tn, q0 + kRows);
  const int row = threadIdx.x / 4, part = threadIdx.x % 4;
  const int64_t i = q0 + row;
  const bool active = i < Tn;
  float qv[DPT], acc[DPT];
#pragma unroll
  for (int c = 0; c < DPT; c++) {
    int d = part * DPT + c;
    qv[c] = active && d < D ? Elem<T>::load(q, (i * Hq + h) * D + d) * scale : 0.f;
    acc[c] = 0.f;
  }
  float m = -FLT_MAX, l = 0.f;
  RangeInfo qi = summarize(ids, q0, q1, &info[0]);
  for (int64_t k0 = 0; k0 < Tn; k0 += kTile) {
    int64_t k1 = min(Tn, k0 + kTile);
    RangeInfo ki = summarize(ids, k0, k1, &info[1]);
    if (!may_see(qi, ki, causal)) continue;
    stage_pair<T, DPT>(Ks, Vs, k, v, k0, Tn, Hk, hk, D, 1.f);
    __syncthreads();
    for (int r = 0; r < int(k1 - k0); r++) {
      int64_t j = k0 + r;
      float s = 0.f;
#pragma unroll
      for (int c = 0; c < DPT; c++) s += qv[c] * Ks[r][part * DPT + c];
      s = quad_sum(s);
      // invisible pairs get a zero weight (corr = 1, p = 0): no divergence around the update
      const bool vis = active && attention_visible(ids.doc, ids.span, ids.pos, causal, i, j);
      const float mn = vis ? fmaxf(m, s) : m;
      const float corr = __expf(m - mn), p = vis ? __expf(s - mn) : 0.f;
      l = l * corr + p;
#pragma unroll
      for (int c = 0; c < DPT; c++) acc[c] = acc[c] * corr + p * Vs[r][part * DPT + c];
      m = mn;
    }
    __syncthreads();
  }
  if (!active) return;
#pragma unroll
  for (int c = 0; c < DPT; c++) {
    int d = part * DPT + c;
    if (d < D) Elem<T>::store(out, (i * Hq + h) * D + d, l > 0.f ? acc[c] / l : 0.f);
  }
  if (part == 0) lse[int64_t(h) * Tn + i] = l > 0.f ? m + logf(l) : -INFINITY;
}

// delta[h, i] = dO_i . O_i
template <typename T>
__global__ void delta_kernel(const T* o, const T* dout, int64_t Tn, int Hq, int D, float* delta) {
  int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t w = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; w < Tn * Hq; w += warps) {
    int64_t i = w / Hq;
    int h = int(w % Hq);
    float s = 0.f;
    for (int d = threadIdx.x % 32; d < D; d += 32) s += Elem<T>::load(o, (i * Hq + h) * D + d) * Elem<T>::load(dout, (i * Hq + h) * D + d);
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (threadIdx.x % 32 == 0) delta[int64_t(h) * Tn + i] = s;
  }
}

template <typename T, int DPT>
__global__ void __launch_bounds__(kThreads) dq_kernel(const T* q, const T* k, const T* v, const T* dout, const float* lse, const float* delta, Ids ids,
                                                    bool causal, float scale, int64_t Tn, int Hq, int Hk, int D, T* dq) {
  __shared__ float Ks[kTile][4 * DPT + 1];
  __shared__ float Vs[kTile][4 * DPT + 1];
  __shared__ RangeInfo info[2];
  const int h = blockIdx.y, hk = h / (Hq / Hk);
  const int64_t q0 = int64_t(blockIdx.x) * kRows, q1 = min(Tn, q0 + kRows);
  const int row = threadIdx.x / 4, part = threadIdx.x % 4;
  const int64_t i = q0 + row;
  const bool active = i < Tn;
  float qv[DPT], dov[DPT], acc[DPT];
#pragma unroll
  for (int c = 0; c < DPT; c++) {
    int d = part * DPT + c;
    bool ok = active && d < D;
    qv[c] = ok ? Elem<T>::load(q, (i * Hq + h) * D + d) * scale : 0.f;
    dov[c] = ok ? Elem<T>::load(dout, (i * Hq + h) * D + d) : 0.f;
    acc[c] = 0.f;
  }
  const float li = active ? lse[int64_t(h) * Tn + i] : 0.f, di = active ? delta[int64_t(h) * Tn + i] : 0.f;
  RangeInfo qi = summarize(ids, q0, q1, &info[0]);
  for (int64_t k0 = 0; k0 < Tn; k0 += kTile) {
    int64_t k1 = min(Tn, k0 + kTile);
    RangeInfo ki = summarize(ids, k0, k1, &info[1]);
    if (!may_see(qi, ki, causal)) continue;
    stage_pair<T, DPT>(Ks, Vs, k, v, k0, Tn, Hk, hk, D, 1.f);
    __syncthreads();
    for (int r = 0; r < int(k1 - k0); r++) {
      int64_t j = k0 + r;
      float s = 0.f, dp = 0.f;
#pragma unroll
      for (int c = 0; c < DPT; c++) {
        s += qv[c] * Ks[r][part * DPT + c];
        dp += dov[c] * Vs[r][part * DPT + c];
      }
      s = quad_sum(s);
      dp = quad_sum(dp);
      if (!active || !isfinite(li) || !attention_visible(ids.doc, ids.span, ids.pos, causal, i, j)) continue;
      float ds = __expf(s - li) * (dp - di);
#pragma unroll
      for (int c = 0; c < DPT; c++) acc[c] += ds * Ks[r][part * DPT + c];
    }
    __syncthreads();
  }
  if (!active) return;
#pragma unroll
  for (int c = 0; c < DPT; c++) {
    int d = part * DPT + c;
    if (d < D) Elem<T>::store(dq, (i * Hq + h) * D + d, acc[c] * scale);
  }
}

// One block per (key tile, kv head): sums over every query head of the GQA group and every query.
template <typename T, int DPT>
__global__ void __launch_bounds__(kThreads) dkdv_kernel(const T* q, const T* k, const T* v, const T* dout, const float* lse, const float* delta,
                                                      Ids ids, bool causal, float scale, int64_t Tn, int Hq, int Hk, int D, T* dk, T* dv) {
  __shared__ float Qs[kTile][4 * DPT + 1];
  __shared__ float Ds[kTile][4 * DPT + 1];
  __shared__ float Ls[kTile], Es[kTile];
  __shared__ RangeInfo info[2];
  const int hk = blockIdx.y, rep = Hq / Hk;
  const int64_t k0 = int64_t(blockIdx.x) * kRows, k1 = min(Tn, k0 + kRows);
  const int row = threadIdx.x / 4, part = threadIdx.x % 4;
  const int64_t j = k0 + row;
  const bool active = j < Tn;
  float kv[DPT], vv[DPT], gk[DPT], gv[DPT];
#pragma unroll
  for (int c = 0; c < DPT; c++) {
    int d = part * DPT + c;
    bool ok = active && d < D;
    kv[c] = ok ? Elem<T>::load(k, (j * Hk + hk) * D + d) : 0.f;
    vv[c] = ok ? Elem<T>::load(v, (j * Hk + hk) * D + d) : 0.f;
    gk[c] = gv[c] = 0.f;
  }
  RangeInfo ki = summarize(ids, k0, k1, &info[1]);
  for (int64_t q0 = 0; q0 < Tn; q0 += kTile) {
    int64_t q1 = min(Tn, q0 + kTile);
    RangeInfo qi = summarize(ids, q0, q1, &info[0]);
    if (!may_see(qi, ki, causal)) continue;
    for (int h = hk * rep; h < (hk + 1) * rep; h++) {
      stage_pair<T, DPT>(Qs, Ds, q, dout, q0, Tn, Hq, h, D, scale);
      for (int r = threadIdx.x; r < kTile; r += kThreads) {
        int64_t i = q0 + r;
        Ls[r] = i < Tn ? lse[int64_t(h) * Tn + i] : -INFINITY;
        Es[r] = i < Tn ? delta[int64_t(h) * Tn + i] : 0.f;
      }
      __syncthreads();
      for (int r = 0; r < int(q1 - q0); r++) {
        int64_t i = q0 + r;
        float s = 0.f, dp = 0.f;
#pragma unroll
        for (int c = 0; c < DPT; c++) {
          s += Qs[r][part * DPT + c] * kv[c];
          dp += Ds[r][part * DPT + c] * vv[c];
        }
        s = quad_sum(s);
        dp = quad_sum(dp);
        if (!active || !isfinite(Ls[r]) || !attention_visible(ids.doc, ids.span, ids.pos, causal, i, j)) continue;
        float p = __expf(s - Ls[r]);
        float ds = p * (dp - Es[r]);
#pragma unroll
        for (int c = 0; c < DPT; c++) {
          gv[c] += p * Ds[r][part * DPT + c];
          gk[c] += ds * Qs[r][part * DPT + c];  // Qs holds q * scale: dk = scale * sum ds q
        }
      }
      __syncthreads();
    }
  }
  if (!active) return;
#pragma unroll
  for (int c = 0; c < DPT; c++) {
    int d = part * DPT + c;
    if (d < D) {
      Elem<T>::store(dk, (j * Hk + hk) * D + d, gk[c]);
      Elem<T>::store(dv, (j * Hk + hk) * D + d, gv[c]);
    }
  }
}

template <typename T, int DPT>
void run_forward(const Stream& s, const AttentionArgs& a, const Ids& ids, const TensorView& out, const TensorView& lse) {
  dim3 grid(unsigned((a.tokens + kRows - 1) / kRows), unsigned(a.hq));
  forward_kernel<T, DPT><<<grid, kThreads, 0, stream_of(s)>>>(
      static_cast<const T*>(a.q.data), static_cast<const T*>(a.k.data), static_cast<const T*>(a.v.data), ids, a.causal, float(a.scale), a.tokens,
      int(a.hq), int(a.hkv), int(a.dim), static_cast<T*>(out.data), static_cast<float*>(lse.data));
}

template <typename T, int DPT>
void run_backward(const Stream& s, const AttentionArgs& a, const Ids& ids, const TensorView& out, const TensorView& dout, const TensorView& lse,
                  const TensorView& dq, const TensorView& dk, const TensorView& dv) {
  cudaStream_t st = stream_of(s);
  float* delta = stream_workspace<float>(size_t(a.tokens * a.hq), st, "attention backward");
  const T *q = static_cast<const T*>(a.q.data), *k = static_cast<const T*>(a.k.data), *v = static_cast<const T*>(a.v.data);
  delta_kernel<T><<<grid_for(a.tokens * a.hq * 32), 256, 0, st>>>(static_cast<const T*>(out.data), static_cast<const T*>(dout.data), a.tokens,
                                                                    int(a.hq), int(a.dim), delta);
  dim3 gq(unsigned((a.tokens + kRows - 1) / kRows), unsigned(a.hq)), gk(unsigned((a.tokens + kRows - 1) / kRows), unsigned(a.hkv));
  dq_kernel<T, DPT><<<gq, kThreads, 0, st>>>(q, k, v, static_cast<const T*>(dout.data), static_cast<const float*>(lse.data), delta, ids, a.causal,
                                             float(a.scale), a.tokens, int(a.hq), int(a.hkv), int(a.dim), static_cast<T*>(dq.data));
  dkdv_kernel<T, DPT><<<gk, kThreads, 0, st>>>(q, k, v, static_cast<const T*>(dout.data), static_cast<const float*>(lse.data), delta, ids, a.causal,
                                               float(a.scale), a.tokens, int(a.hq), int(a.hkv), int(a.dim), static_cast<T*>(dk.data),
                                               static_cast<T*>(dv.data));
  cudaFreeAsync(delta, st);
}

Ids ids_of(const AttentionArgs& a) {
  return {static_cast<const int32_t*>(a.doc_ids.data), static_cast<const int32_t*>(a.span_ids.data), static_cast<const int32_t*>(a.positions.data)};
}


template <typename T>
__global__ void rope_kernel(const T* x, const int32_t* pos, int64_t Tn, int64_t H, int64_t D, double theta, bool inverse, T* out) {
  const int64_t half = D / 2;
  MIXT_GRID_STRIDE(e, Tn * half) {
    int64_t t = e / half, c = e % half;
    // the angle in double: positions times small frequencies lose digits in float
    double ang = double(pos[t]) * exp(-2.0 * double(c) / double(D) * log(theta));
    double sd, cd;
    sincos(ang, &sd, &cd);
    float cs = float(cd), sn = inverse ? -float(sd) : float(sd);
    for (int64_t h = 0; h < H; h++) {
      int64_t o = (t * H + h) * D;
      float x1 = Elem<T>::load(x, o + c), x2 = Elem<T>::load(x, o + c + half);
      Elem<T>::store(out, o + c, x1 * cs - x2 * sn);
      Elem<T>::store(out, o + c + half, x1 * sn + x2 * cs);
    }
  }
}

__global__ void segment_kernel(const int32_t* cu, int64_t docs, int64_t T, int32_t* out, int* flag, int tag) {
  MIXT_GRID_STRIDE(i, T) {
    // the last document whose start is <= i
    int64_t lo = 0, hi = docs;
    while (hi - lo > 1) {
      int64_t mid = (lo + hi) / 2;
      if (cu[mid] <= i) lo = mid;
      else hi = mid;
    }
    if (i == 0 && (cu[0] != 0 || cu[docs] != T)) report_fault(flag, tag, kFaultBadOffsets);
    out[i] = int32_t(lo);
  }
}

// MIXT_ATTENTION=portable: the SIMT kernels of this file whatever else is enabled (the reference and
// fallback).
bool portable_forced() {
  static const bool on = [] {
    const char* e = std::getenv("MIXT_ATTENTION");
    return e && std::string(e) == "portable";
  }();
  return on;
}

}  // namespace

void attention_forward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& lse) {
  if (a.tokens == 0) return;
  if (a.dim > 128) fail("attention: head dim above 128 is not supported on CUDA");
  int device = 0;
  cudaGetDevice(&device);
  const bool fast = !portable_forced();
  if (fast && hopper::attention_enabled(device) && hopper::try_attention_forward(s, a, out, lse)) return;
  if (fast && mma::attention_enabled(device) && mma::try_attention_forward(s, a, out, lse)) return;
  dispatch_gpu_float(a.q.dtype, "attention", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (a.dim <= 64) run_forward<T, 16>(s, a, ids_of(a), out, lse);
    else run_forward<T, 32>(s, a, ids_of(a), out, lse);
  });
}

void attention_backward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& dout, const TensorView& lse,
                        const TensorView& dq, const TensorView& dk, const TensorView& dv) {
  if (a.tokens == 0) return;
  if (a.dim > 128) fail("attention: head dim above 128 is not supported on CUDA");
  int device = 0;
  cudaGetDevice(&device);
  if (!portable_forced() && mma::attention_enabled(device) && mma::try_attention_backward(s, a, out, dout, lse, dq, dk, dv)) return;
  dispatch_gpu_float(a.q.dtype, "attentionBackward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (a.dim <= 64) run_backward<T, 16>(s, a, ids_of(a), out, dout, lse, dq, dk, dv);
    else run_backward<T, 32>(s, a, ids_of(a), out, dout, lse, dq, dk, dv);
  });
}

void rope(const Stream& s, const TensorView& x, const TensorView& positions, double theta, bool inverse, const TensorView& out) {
  int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2);
  if (T * D == 0) return;
  dispatch_gpu_float(x.dtype, "rope", [&](auto* tag) {
    using E = std::remove_pointer_t<decltype(tag)>;
    rope_kernel<E><<<grid_for(T * D / 2), 256, 0, stream_of(s)>>>(static_cast<const E*>(x.data), static_cast<const int32_t*>(positions.data), T, H,
                                                                  D, theta, inverse, static_cast<E*>(out.data));
  });
}

void segment_ids(const Stream& s, const TensorView& cu, const TensorView& out) {
  int64_t T = out.numel(), docs = cu.numel() - 1;
  if (T == 0) return;
  if (docs < 1) fail("segmentIds: cu_seqlens needs at least two entries for a non-empty sequence");
  segment_kernel<<<grid_for(T), 256, 0, stream_of(s)>>>(static_cast<const int32_t*>(cu.data), docs, T, static_cast<int32_t*>(out.data), s.error_flag,
                                                        s.op_tag);
}

}  // namespace mixt::cuda
