// The sm_90a attention forward (hopper_attention.cu): opt-in (MIXT_HOPPER_ATTENTION=1) on compute capability 9.0.
#pragma once

#include <cuda_runtime.h>

#include "../kernels/attention.h"

namespace mixt::cuda::hopper {
bool attention_enabled(int device);
// Launches the forward when the Hopper kernel takes the arguments (bf16, D 64 or 128); false: use attention.cu.
bool try_attention_forward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& lse);
}  // namespace mixt::cuda::hopper
