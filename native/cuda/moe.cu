// CUDA routing for depth and experts: top-k per row by rank counting (exact, stable), router gates
// with one warp per token, gate gradients, row scaling and slot bookkeeping.
#include <cfloat>

#include "../kernels/moe.h"
#include "common.cuh"

namespace mixt::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kChunk = 2048;  // scores staged in shared memory per pass

__device__ __forceinline__ bool beats(float sx, int x, float sy, int y) {
  // larger first, ties to the lower index, NaN last
  bool nx = sx != sx, ny = sy != sy;
  if (nx != ny) return ny;
  return sx > sy || (!(sx < sy) && x < y);
}

// One block per row: each column's rank = how many columns beat it; rank < k is chosen. The chosen
// are then written in column order with a block-wide running count.
__global__ void topk_rows_kernel(const float* scores, int64_t rows, int64_t cols, int64_t rs, int64_t cs, int64_t k, bool flat, int32_t* out) {
  __shared__ float chunk[kChunk];
  __shared__ int32_t warp_counts[kThreads / 32];
  __shared__ int32_t base;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    if (threadIdx.x == 0) base = 0;
    __syncthreads();
    for (int64_t c0 = 0; c0 < cols; c0 += kThreads) {
      int64_t c = c0 + threadIdx.x;
      float sc = c < cols ? scores[r * rs + c * cs] : 0.f;
      int64_t rank = 0;
      for (int64_t j0 = 0; j0 < cols; j0 += kChunk) {
        __syncthreads();
        for (int64_t j = threadIdx.x; j < kChunk && j0 + j < cols; j += kThreads) chunk[j] = scores[r * rs + (j0 + j) * cs];
        __syncthreads();
        if (c < cols) {
          int64_t n = cols - j0 < kChunk ? cols - j0 : int64_t(kChunk);
          for (int64_t j = 0; j < n; j++) rank += beats(chunk[j], int(j0 + j), sc, int(c)) ? 1 : 0;
        }
      }
      bool chosen = c < cols && rank < k;
      // position among the chosen of this pass, in column order
      unsigned ballot = __ballot_sync(0xffffffffu, chosen);
      int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
      if (lane == 0) warp_counts[warp] = __popc(ballot);
      __syncthreads();
      int before = 0;
      for (int w = 0; w < warp; w++) before += warp_counts[w];
      int pos = base + before + __popc(ballot & ((1u << lane) - 1));
      if (chosen && pos < k) out[r * k + pos] = int32_t(flat ? r * cols + c : c);
      __syncthreads();
      if (threadIdx.x == 0) {
        int total = 0;
        for (int w = 0; w < kThreads / 32; w++) total += warp_counts[w];
        base += total;
      }
      __syncthreads();
    }
  }
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One warp per token (E <= 1024: each lane holds up to 32 experts' probabilities).
__global__ void router_topk_kernel(const float* logits, int64_t T, int E, int K, GateKind gate, bool renorm, float* probs, float* lse,
                                   int32_t* experts, float* gates) {
  int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  int lane = threadIdx.x % 32;
  for (int64_t t = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; t < T; t += warps) {
    const float* l = logits + t * E;
    float mx = -FLT_MAX;
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, l[e]);
    mx = warp_max(mx);
    float s = 0.f;
    for (int e = lane; e < E; e += 32) s += __expf(l[e] - mx);
    s = warp_sum(s);
    if (lane == 0) lse[t] = mx + logf(s);
    for (int e = lane; e < E; e += 32) probs[t * E + e] = gate == GateKind::Softmax ? __expf(l[e] - mx) / s : 1.f / (1.f + __expf(-l[e]));
    __syncwarp();
    unsigned taken = 0;  // bit i: expert lane + 32 i already chosen
    float sum = 0.f;
    for (int j = 0; j < K; j++) {
      float best = -1.f;
      int best_e = INT_MAX;
      for (int i = 0; lane + 32 * i < E; i++) {
        int e = lane + 32 * i;
        float p = probs[t * E + e];
        if (!(taken >> i & 1) && (p > best || (p == best && e < best_e))) {
          best = p;
          best_e = e;
        }
      }
      for (int o = 16; o > 0; o >>= 1) {
        float ob = __shfl_xor_sync(0xffffffffu, best, o);
        int oe = __shfl_xor_sync(0xffffffffu, best_e, o);
        if (ob > best || (ob == best && oe < best_e)) {
          best = ob;
          best_e = oe;
        }
      }
      if (best_e % 32 == lane) taken |= 1u << (best_e / 32);
      if (lane == 0) {
        experts[t * K + j] = best_e;
        gates[t * K + j] = best;
      }
      sum += best;
    }
    __syncwarp();
    if (renorm && lane < K) gates[t * K + lane] /= sum;
    for (int j = lane + 32; renorm && j < K; j += 32) gates[t * K + j] /= sum;
  }
}

__global__ void router_backward_kernel(const float* logits, const float* probs, const float* lse, const int32_t* experts, const float* gates,
                                       const float* dgates, const float* dprobs, int64_t T, int E, int K, GateKind gate, bool renorm, float z,
                                       float* dlogits, int* flag, int tag) {
  int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  int lane = threadIdx.x % 32;
  for (int64_t t = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; t < T; t += warps) {
    // a chosen expert outside [0, E) is bad data: reported, and the token's gradient left at zero
    bool bad = false;
    for (int j = 0; j < K; j++) bad |= experts[t * K + j] < 0 || experts[t * K + j] >= E;
    if (bad) {
      if (lane == 0) report_fault(flag, tag, kFaultIndexRange);
      for (int e = lane; e < E; e += 32) dlogits[t * E + e] = 0.f;
      continue;
    }
    // the gate part of dprobs, per chosen expert: dg (or (dg - <dg, g>) / sum when renormalised)
    float sum = 0.f, gdot = 0.f;
    if (dgates) {
      for (int j = lane; j < K; j += 32) {
        sum += probs[t * E + experts[t * K + j]];
        gdot += dgates[t * K + j] * gates[t * K + j];
      }
      sum = warp_sum(sum);
      gdot = warp_sum(gdot);
    }
    auto dp_of = [&](int e) {
      float d = dprobs ? dprobs[t * E + e] : 0.f;
      if (dgates)
        for (int j = 0; j < K; j++)
          if (experts[t * K + j] == e) d += renorm ? (dgates[t * K + j] - gdot) / sum : dgates[t * K + j];
      return d;
    };
    float pdp = 0.f;
    for (int e = lane; e < E; e += 32) pdp += probs[t * E + e] * dp_of(e);
    pdp = warp_sum(pdp);
    float l = lse[t];
    for (int e = lane; e < E; e += 32) {
      float p = probs[t * E + e], dp = dp_of(e);
      float d = gate == GateKind::Softmax ? p * (dp - pdp) : dp * p * (1.f - p);
      if (z != 0.f) d += z * 2.f * l * __expf(logits[t * E + e] - l);
      dlogits[t * E + e] = d;
    }
  }
}

template <typename T>
__global__ void row_scale_kernel(const T* x, const float* w, int64_t R, int64_t C, T* y) {
  MIXT_GRID_STRIDE(i, R * C) { Elem<T>::store(y, i, Elem<T>::load(x, i) * w[i / C]); }
}

template <typename T>
__global__ void row_dot_kernel(const T* a, const T* b, int64_t R, int64_t C, float* out) {
  int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; r < R; r += warps) {
    float s = 0.f;
    for (int64_t c = threadIdx.x % 32; c < C; c += 32) s += Elem<T>::load(a, r * C + c) * Elem<T>::load(b, r * C + c);
    s = warp_sum(s);
    if (threadIdx.x % 32 == 0) out[r] = s;
  }
}

__global__ void slot_tokens_kernel(const int32_t* slots, int64_t n, int64_t k, const int32_t* experts, int64_t n_experts, int64_t noop,
                                   int32_t* tokens, int* flag, int tag) {
  MIXT_GRID_STRIDE(i, n) {
    int32_t a = slots[i];
    if (experts && a >= n_experts) {  // an assignment with no expert entry
      report_fault(flag, tag, kFaultIndexRange);
      tokens[i] = -1;
      continue;
    }
    tokens[i] = a < 0 || (experts && noop >= 0 && experts[a] == noop) ? -1 : int32_t(a / k);
  }
}

__global__ void assignment_priority_kernel(const int32_t* rows, int64_t tokens, int64_t k, int32_t* order) {
  MIXT_GRID_STRIDE(i, tokens * k) {
    int64_t j = i / tokens, r = i % tokens;
    order[i] = int32_t((rows ? rows[r] : r) * k + j);
  }
}

__global__ void capacity_slots_kernel(const int32_t* perm, int64_t n, const int32_t* offsets, int64_t E, int64_t C, const int32_t* order,
                                      int32_t* slots, int* flag, int tag) {
  MIXT_GRID_STRIDE(i, E * C) {
    int64_t e = i / C, j = i % C;
    int64_t lo = offsets[e], hi = offsets[e + 1];
    if (lo < 0 || hi < lo || hi > n) {  // offsets index perm: out of order or past its end is bad data
      if (j == 0) report_fault(flag, tag, kFaultBadOffsets);
      slots[i] = -1;
      continue;
    }
    int64_t at = lo + j;
    int32_t a = at < hi ? perm[at] : -1;
    if (order && a >= n) {  // with an order, perm holds positions in it: one outside is bad data
      report_fault(flag, tag, kFaultIndexRange);
      a = -1;
    }
    slots[i] = order && a >= 0 ? order[a] : a;
  }
}

__global__ void choice_gate_index_kernel(const int32_t* chosen, int64_t n, int64_t experts, int64_t per, int32_t* out) {
  MIXT_GRID_STRIDE(i, n) { out[i] = int32_t(int64_t(chosen[i]) * experts + i / per); }
}

unsigned warp_rows(int64_t rows) {
  int64_t b = (rows + 7) / 8;
  return unsigned(b < 1 ? 1 : b > 65535 * 8 ? 65535 * 8 : b);
}

}  // namespace

void topk_rows(const Stream& s, const TopkRowsArgs& a, const TensorView& out) {
  if (a.rows == 0 || a.k == 0) return;
  if (a.scores.dtype != DType::F32) fail("topkRows: scores are f32 on CUDA");
  unsigned blocks = unsigned(a.rows < 65535 * 4 ? a.rows : 65535 * 4);
  topk_rows_kernel<<<blocks, kThreads, 0, stream_of(s)>>>(static_cast<const float*>(a.scores.data), a.rows, a.cols, a.row_stride, a.col_stride,
                                                          a.k, a.flat, static_cast<int32_t*>(out.data));
}

void router_topk(const Stream& s, const RouterArgs& a, const TensorView& probs, const TensorView& lse, const TensorView& experts,
                 const TensorView& gates) {
  if (a.tokens == 0) return;
  if (a.experts > 1024) fail("router: at most 1024 experts on CUDA");
  router_topk_kernel<<<warp_rows(a.tokens), 256, 0, stream_of(s)>>>(
      static_cast<const float*>(a.logits.data), a.tokens, int(a.experts), int(a.k), a.gate, a.renormalize, static_cast<float*>(probs.data),
      static_cast<float*>(lse.data), static_cast<int32_t*>(experts.data), static_cast<float*>(gates.data));
}

void router_backward(const Stream& s, const RouterArgs& a, const TensorView& probs, const TensorView& lse, const TensorView& experts,
                     const TensorView& gates, const TensorView& dgates, const TensorView& dprobs, double z, const TensorView& dlogits) {
  if (a.tokens == 0) return;
  router_backward_kernel<<<warp_rows(a.tokens), 256, 0, stream_of(s)>>>(
      static_cast<const float*>(a.logits.data), static_cast<const float*>(probs.data), static_cast<const float*>(lse.data),
      static_cast<const int32_t*>(experts.data), static_cast<const float*>(gates.data), static_cast<const float*>(dgates.data),
      static_cast<const float*>(dprobs.data), a.tokens, int(a.experts), int(a.k), a.gate, a.renormalize, float(z),
      static_cast<float*>(dlogits.data), s.error_flag, s.op_tag);
}

void row_scale(const Stream& s, const TensorView& x, const TensorView& w, const TensorView& y) {
  int64_t R = x.rows(), C = x.cols();
  if (R * C == 0) return;
  dispatch_gpu_float(x.dtype, "rowScale", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    row_scale_kernel<T><<<grid_for(R * C), 256, 0, stream_of(s)>>>(static_cast<const T*>(x.data), static_cast<const float*>(w.data), R, C,
                                                                    static_cast<T*>(y.data));
  });
}

void row_dot(const Stream& s, const TensorView& a, const TensorView& b, const TensorView& out) {
  int64_t R = a.rows(), C = a.cols();
  if (R == 0) return;
  dispatch_gpu_float(a.dtype, "rowDot", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    row_dot_kernel<T><<<warp_rows(R), 256, 0, stream_of(s)>>>(static_cast<const T*>(a.data), static_cast<const T*>(b.data), R, C,
                                                               static_cast<float*>(out.data));
  });
}

void slot_tokens(const Stream& s, const TensorView& slots, int64_t k, const TensorView& experts, int64_t noop, const TensorView& tokens) {
  int64_t n = slots.numel();
  if (!n) return;
  slot_tokens_kernel<<<grid_for(n), 256, 0, stream_of(s)>>>(static_cast<const int32_t*>(slots.data), n, k,
                                                            static_cast<const int32_t*>(experts.data), experts.data ? experts.numel() : 0, noop,
                                                            static_cast<int32_t*>(tokens.data), s.error_flag, s.op_tag);
}

void assignment_priority(const Stream& s, const TensorView& rows, int64_t tokens, int64_t k, const TensorView& order) {
  if (tokens * k == 0) return;
  assignment_priority_kernel<<<grid_for(tokens * k), 256, 0, stream_of(s)>>>(static_cast<const int32_t*>(rows.data), tokens, k,
                                                                             static_cast<int32_t*>(order.data));
}

void capacity_slots(const Stream& s, const TensorView& perm, const TensorView& offsets, int64_t capacity, const TensorView& order,
                    const TensorView& slots) {
  int64_t E = offsets.numel() - 1;
  if (E * capacity == 0) return;
  capacity_slots_kernel<<<grid_for(E * capacity), 256, 0, stream_of(s)>>>(static_cast<const int32_t*>(perm.data), perm.numel(),
                                                                          static_cast<const int32_t*>(offsets.data), E, capacity,
                                                                          static_cast<const int32_t*>(order.data), static_cast<int32_t*>(slots.data),
                                                                          s.error_flag, s.op_tag);
}

void choice_gate_index(const Stream& s, const TensorView& chosen, int64_t experts, const TensorView& out) {
  int64_t n = chosen.numel();
  if (!n) return;
  choice_gate_index_kernel<<<grid_for(n), 256, 0, stream_of(s)>>>(static_cast<const int32_t*>(chosen.data), n, experts, n / experts,
                                                                   static_cast<int32_t*>(out.data));
}

}  // namespace mixt::cuda
