// Grouped GEMM over row groups given by a device offsets array, one launch for all groups (the
// kernel for modality-untied projections and Mixture-of-Experts experts):
//   forward  y[rows of g] = x[rows of g] . w[g]^T         x [N, K], w [G, Nout, K], y [N, Nout]
//   dX       dx[rows of g] = dy[rows of g] . w[g]          dy [N, Nout], dx [N, K]
//   dW       dw[g] = dy[rows of g]^T . x[rows of g]        dw [G, Nout, K] (K-grouped: variable depth)
// out = result + beta * out. Offsets: i32 [G+1], 0 = o[0] <= ... <= o[G] <= N, checked on the device;
// rows past o[G] belong to no group (dropped or no-op expert slots): left untouched, or ignored by dW.
#pragma once

#include "runtime.h"

namespace mixt {

enum class GroupedKind : int { Forward = 0, DX = 1, DW = 2 };

struct GroupedGemmArgs {
  GroupedKind kind = GroupedKind::Forward;
  TensorView a, b, out, offsets;  // forward: a=x, b=w; dX: a=dy, b=w; dW: a=dy, b=x
  int64_t groups = 1, rows = 0, n_out = 0, k_in = 0;  // N, Nout, K
  double beta = 0;
};

#define MIXT_GROUPED_GEMM_API void grouped_gemm(const Stream& s, const GroupedGemmArgs& args);

namespace cpu { MIXT_GROUPED_GEMM_API }
namespace cuda { MIXT_GROUPED_GEMM_API }

}  // namespace mixt
