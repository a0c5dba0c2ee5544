// The sm_90a grouped GEMM (hopper_gemm.cu): opt-in (MIXT_HOPPER_GEMM=1) on compute capability 9.0.
#pragma once

#include <cuda_runtime.h>

namespace mixt::cuda {
struct GemmProblem;
namespace hopper {
bool enabled(int device);
// Launches the problem when the Hopper kernel takes its layout; false: use another kernel.
bool try_run(const GemmProblem& p, cudaStream_t stream, int device);
}  // namespace hopper
}  // namespace mixt::cuda
