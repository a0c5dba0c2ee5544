// The tensor-core (mma.sync) attention of mma_attention.cu: opt-in (MIXT_MMA_ATTENTION=1) on compute
// capability 8.0 and later.
#pragma once

#include <cuda_runtime.h>

#include "../kernels/attention.h"

namespace mixt::cuda::mma {
bool attention_enabled(int device);
// Launch the pass when these kernels take the arguments (f32 or bf16, D 64 or 128); false: use attention.cu.
bool try_attention_forward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& lse);
bool try_attention_backward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& dout, const TensorView& lse,
                            const TensorView& dq, const TensorView& dk, const TensorView& dv);
}  // namespace mixt::cuda::mma
