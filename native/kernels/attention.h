// Global attention over packed tokens with the masks of multimodal training, GQA, the row
// log-sum-exp saved by the forward and recomputation in the backward; RoPE; segment ids.
// Visibility, exactly: key j is visible to query i iff
//   doc[i] == doc[j] (when doc ids are given) and
//   (!causal or pos[j] <= pos[i] or (span[i] >= 0 and span[i] == span[j]))
// pos defaults to the token index; span ids mark image spans (bidirectional inside, Transfusion).
#pragma once

#include "runtime.h"

namespace mixt {

struct AttentionArgs {
  TensorView q, k, v;                       // [T, Hq, D], [T, Hkv, D], [T, Hkv, D]
  TensorView doc_ids, span_ids, positions;  // i32 [T]; data null when absent
  bool causal = true;
  double scale = 1;
  int64_t tokens = 0, hq = 1, hkv = 1, dim = 0;
};

MIXT_HD bool attention_visible(const int32_t* doc, const int32_t* span, const int32_t* pos, bool causal, int64_t i, int64_t j) {
  if (doc && doc[i] != doc[j]) return false;
  if (!causal) return true;
  int64_t pi = pos ? pos[i] : i, pj = pos ? pos[j] : j;
  if (pj <= pi) return true;
  return span && span[i] >= 0 && span[i] == span[j];
}

#define MIXT_ATTENTION_API                                                                                   \
  /* out [T, Hq, D]; lse [Hq, T] (f32, f64 for f64 inputs; -inf for a row that sees nothing) */             \
  void attention_forward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& lse); \
  void attention_backward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& dout, \
                          const TensorView& lse, const TensorView& dq, const TensorView& dk, const TensorView& dv); \
  /* rotary embedding of pairs (c, c + D/2) by angle pos * theta^(-2c/D); inverse rotates back */          \
  void rope(const Stream& s, const TensorView& x, const TensorView& positions, double theta, bool inverse,   \
            const TensorView& out);                                                                          \
  /* doc id per token from cu_seqlens [docs + 1] */                                                         \
  void segment_ids(const Stream& s, const TensorView& cu_seqlens, const TensorView& out);

namespace cpu { MIXT_ATTENTION_API }
namespace cuda { MIXT_ATTENTION_API }

}  // namespace mixt
