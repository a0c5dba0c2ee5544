// Reductions along one axis: x viewed as [outer, n, inner] reduces to out [outer, inner].
// Sum and mean accumulate in float (double for f64); SumSquares serves norms of gradients.
#pragma once

#include "runtime.h"

namespace mixt {

enum class ReduceOp : int { Sum = 0, Max = 1, Min = 2, Mean = 3, SumSquares = 4 };

#define MIXT_REDUCE_API                                                                                  \
  void reduce(const Stream& s, ReduceOp op, const TensorView& x, int64_t outer, int64_t n, int64_t inner, \
              const TensorView& out);                                                                    \
  /* Fails the stream (ERR_NON_FINITE, naming the op) when x holds a NaN or an infinity. */              \
  void assert_finite(const Stream& s, const TensorView& x);

namespace cpu { MIXT_REDUCE_API }
namespace cuda { MIXT_REDUCE_API }

}  // namespace mixt
