// Grouped GEMM on the GEMM core: forward and dX are RowGroups problems (groups split the rows),
// dW a DepthGroups problem (groups split the reduction). One launch for all groups; the offsets
// are read on the device.
#include "../kernels/grouped_gemm.h"
#include "common.cuh"
#include "gemm_core.cuh"

namespace mixt::cuda {

void grouped_gemm(const Stream& s, const GroupedGemmArgs& a) {
  const int64_t N = a.n_out, K = a.k_in;
  GemmProblem p;
  p.a = a.a.data;
  p.b = a.b.data;
  p.c = a.out.data;
  p.offsets = static_cast<const int32_t*>(a.offsets.data);
  p.groups = int(a.groups);
  p.total = a.rows;
  p.beta = float(a.beta);
  p.fault_flag = s.error_flag;
  p.fault_tag = s.op_tag;
  switch (a.kind) {
    case GroupedKind::Forward:  // C[r, n] = sum_k x[r, k] w[g, n, k]
      p.grouping = Grouping::RowGroups;
      p.n = N;
      p.k = K;
      p.a_rs = K, p.a_cs = 1, p.a_bs = K;
      p.b_rs = 1, p.b_cs = K, p.b_bs = N * K;
      p.ldc = N, p.c_bs = N;
      if (N == 0 || a.rows == 0) return;
      break;
    case GroupedKind::DX:  // C[r, k] = sum_n dy[r, n] w[g, n, k]
      p.grouping = Grouping::RowGroups;
      p.n = K;
      p.k = N;
      p.a_rs = N, p.a_cs = 1, p.a_bs = N;
      p.b_rs = K, p.b_cs = 1, p.b_bs = N * K;
      p.ldc = K, p.c_bs = K;
      if (K == 0 || a.rows == 0) return;
      break;
    case GroupedKind::DW:  // C[g, n, k] = sum_r dy[r, n] x[r, k] over the rows of g
      p.grouping = Grouping::DepthGroups;
      p.m = N;
      p.n = K;
      p.a_rs = 1, p.a_cs = N, p.a_bs = N;
      p.b_rs = K, p.b_cs = 1, p.b_bs = K;
      p.ldc = K, p.c_bs = N * K;
      if (N == 0 || K == 0) return;
      break;
  }
  dispatch_gpu_float(a.out.dtype, "groupedGemm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    run_gemm<T>(p, stream_of(s));
  });
}

}  // namespace mixt::cuda
