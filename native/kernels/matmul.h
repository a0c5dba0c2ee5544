// Dense (batched) matrix product: c = alpha * op(a) . op(b) + beta * c.
// a: [batch?, m, k] ([batch?, k, m] when trans_a), b likewise [k, n] / [n, k]; a 2-D operand is
// shared by every batch. c: [batch, m, n]. One dtype for a, b and c; f32/bf16 accumulate in f32.
#pragma once

#include "runtime.h"

namespace mixt {

struct MatmulArgs {
  TensorView a, b, c;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  bool a_batched = false, b_batched = false;
  double alpha = 1, beta = 0;
};

#define MIXT_MATMUL_API void matmul(const Stream& s, const MatmulArgs& args);

namespace cpu { MIXT_MATMUL_API }
namespace cuda { MIXT_MATMUL_API }

}  // namespace mixt
