// Routing: the stable grouping plan (counts, offsets, permutation, inverse) of rows by group id,
// and row gather/scatter. Shared by Mixture-of-Transformers modality groups, Mixture-of-Experts
// expert groups and Mixture-of-Depths token selection. Computed on the device: no host sync.
#pragma once

#include "runtime.h"

namespace mixt {

#define MIXT_ROUTING_API                                                                                     \
  /* ids i32 [N] in [0, G): counts [G], offsets [G+1], perm [N] (grouped row j <- original perm[j],       \
     stable), inv [N] (inv[perm[j]] = j). An id out of range is a data fault; that row counts as group 0. */ \
  void routing_plan(const Stream& s, const TensorView& ids, int64_t groups, const TensorView& counts,        \
                    const TensorView& offsets, const TensorView& perm, const TensorView& inv);               \
  /* out[r, :] = x[index[r], :]; rows of `row` elements; index -1: a zero row; else out of [0, N): fault */           \
  void gather_rows(const Stream& s, const TensorView& x, const TensorView& index, int64_t row,              \
                   const TensorView& out);                                                                   \
  /* out[index[r], :] (+)= y[r, :]; duplicates accumulate correctly when accumulate; index -1: skipped */                       \
  void scatter_rows(const Stream& s, const TensorView& y, const TensorView& index, int64_t row,             \
                    bool accumulate, const TensorView& out);

namespace cpu { MIXT_ROUTING_API }
namespace cuda { MIXT_ROUTING_API }

}  // namespace mixt
