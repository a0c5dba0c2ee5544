// Depth and expert routing: top-k over a sequence (Mixture-of-Depths) or over experts (token-choice
// Mixture-of-Experts) or over tokens (expert choice), router gates and their gradients, per-row
// scaling by gates, and the slot bookkeeping of expert dispatch (capacity, dropped and no-op
// assignments). The grouping itself reuses the routing plan of routing.h.
#pragma once

#include "runtime.h"

namespace mixt {

enum class GateKind : int { Softmax = 0, Sigmoid = 1 };

struct TopkRowsArgs {
  TensorView scores;                  // f32 (f64 on the CPU): element (r, c) at r * row_stride + c * col_stride
  int64_t rows = 0, cols = 0, row_stride = 0, col_stride = 1;
  int64_t k = 1;
  bool flat = false;                  // write r * cols + c instead of c
};

struct RouterArgs {
  TensorView logits;                  // [T, E] f32
  int64_t tokens = 0, experts = 0, k = 1;
  GateKind gate = GateKind::Softmax;
  bool renormalize = false;           // gates of the chosen k sum to one
};

#define MIXT_MOE_API                                                                                         \
  /* Exactly k of each row: the k largest scores, ties to the lower column; indices ascending. */           \
  void topk_rows(const Stream& s, const TopkRowsArgs& a, const TensorView& out);                            \
  /* probs [T, E] (softmax or sigmoid of the logits), lse [T], the top-k experts [T, k] (by probability,    \
     ties to the lower id) and their gates [T, k] (renormalised when asked) */                             \
  void router_topk(const Stream& s, const RouterArgs& a, const TensorView& probs, const TensorView& lse,    \
                   const TensorView& experts, const TensorView& gates);                                    \
  /* dlogits [T, E] from dgates [T, k] (may be empty), a dense dprobs [T, E] (may be empty: auxiliary     \
     losses), and z-loss weight z (adds z * 2 lse softmax) */                                               \
  void router_backward(const Stream& s, const RouterArgs& a, const TensorView& probs, const TensorView& lse,  \
                       const TensorView& experts, const TensorView& gates, const TensorView& dgates,        \
                       const TensorView& dprobs, double z, const TensorView& dlogits);                      \
  /* y[r, :] = x[r, :] * w[r] */                                                                            \
  void row_scale(const Stream& s, const TensorView& x, const TensorView& w, const TensorView& y);           \
  /* out[r] = sum_c a[r, c] b[r, c] (f32 out; f64 for f64 inputs) */                                        \
  void row_dot(const Stream& s, const TensorView& a, const TensorView& b, const TensorView& out);           \
  /* token of each slot: slot / k, or -1 for an empty slot (-1) or one whose expert is the no-op one */    \
  void slot_tokens(const Stream& s, const TensorView& slots, int64_t k, const TensorView& experts,          \
                   int64_t noop, const TensorView& tokens);                                                 \
  /* dispatch priority of token-choice assignments (Switch/GShard): every token's first choice in       \
     sequence order, then every second choice, ...: order[j * N + r] = rows[r] * k + j, where rows[r] is   \
     the row of the r-th token in sequence order (rows empty: the rows are in sequence order) */          \
  void assignment_priority(const Stream& s, const TensorView& rows, int64_t tokens, int64_t k,             \
                           const TensorView& order);                                                       \
  /* capacity: slot e * C + j holds the j-th assignment of expert e in the order of perm (mapped through  \
     order[] when given: perm then indexes a priority-ordered list), or -1 */                              \
  void capacity_slots(const Stream& s, const TensorView& perm, const TensorView& offsets, int64_t capacity, \
                      const TensorView& order, const TensorView& slots);                                    \
  /* expert choice: for chosen tokens [E, C], the flat index t * E + e of each one's probability */        \
  void choice_gate_index(const Stream& s, const TensorView& chosen, int64_t experts, const TensorView& out);

namespace cpu { MIXT_MOE_API }
namespace cuda { MIXT_MOE_API }

}  // namespace mixt
