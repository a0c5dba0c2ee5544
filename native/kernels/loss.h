// Softmax cross-entropy on rows of logits (one chunk of the fused LM head), its gradient in place,
// and per-group sums for per-modality reporting. Loss/lse are f32 (f64 for f64 logits).
#pragma once

#include "runtime.h"

namespace mixt {

#define MIXT_LOSS_API                                                                                          \
  /* targets -1: ignored row (loss 0, correct 0). A target outside [0, V) is a data fault, row ignored. */    \
  void cross_entropy_rows(const Stream& s, const TensorView& logits, const TensorView& targets,               \
                          const TensorView& loss, const TensorView& lse, const TensorView& correct);          \
  /* logits <- (softmax(logits) - onehot(target)) * dloss[r]; zero rows where ignored */                      \
  void cross_entropy_rows_backward(const Stream& s, const TensorView& logits, const TensorView& targets,      \
                                   const TensorView& lse, const TensorView& dloss);                           \
  /* sums[g] = sum of values over rows of group g (mask != 0), counts[g] = number of such rows */              \
  void group_sum(const Stream& s, const TensorView& values, const TensorView& ids, const TensorView& mask,    \
                 int64_t groups, const TensorView& sums, const TensorView& counts);

namespace cpu { MIXT_LOSS_API }
namespace cuda { MIXT_LOSS_API }

struct AdamArgs {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, step = 1;
};

#define MIXT_OPTIM_API                                                                                           \
  /* p -= lr * (wd * p + mhat / (sqrt(vhat) + eps)), with g = grad * (*grad_scale); in place; writes the     \
     updated value into `copy` (the compute copy, e.g. bf16) when its data is set */                           \
  void adamw(const Stream& s, const TensorView& param, const TensorView& grad, const TensorView& m,             \
             const TensorView& v, const AdamArgs& a, const TensorView& grad_scale, const TensorView& copy);   \
  /* out[0] += sum(x^2) (fp32 out; accumulation in double on the CPU), deterministic */                        \
  void sum_squares_into(const Stream& s, const TensorView& x, const TensorView& out);                          \
  /* out[0] = min(1, max_norm / (sqrt(norm_sq[0]) + 1e-6)); 0 when norm_sq is not finite */                    \
  void clip_coefficient(const Stream& s, const TensorView& norm_sq, double max_norm, const TensorView& out);

namespace cpu { MIXT_OPTIM_API }
namespace cuda { MIXT_OPTIM_API }

}  // namespace mixt
