// Dense (batched) matmul: one Plain problem of the GEMM core (tensor cores for aligned bf16).
#include "../kernels/matmul.h"
#include "common.cuh"
#include "gemm_core.cuh"

namespace mixt::cuda {

void matmul(const Stream& s, const MatmulArgs& p) {
  if (p.m == 0 || p.n == 0 || p.batch == 0) return;
  GemmProblem g;
  g.grouping = Grouping::Plain;
  g.m = p.m;
  g.n = p.n;
  g.k = p.k;
  g.batch = p.batch;
  g.a = p.a.data;
  g.b = p.b.data;
  g.c = p.c.data;
  g.a_rs = p.trans_a ? 1 : p.k;
  g.a_cs = p.trans_a ? p.m : 1;
  g.b_rs = p.trans_b ? 1 : p.n;
  g.b_cs = p.trans_b ? p.k : 1;
  g.ldc = p.n;
  g.a_bs = p.a_batched ? p.m * p.k : 0;
  g.b_bs = p.b_batched ? p.k * p.n : 0;
  g.c_bs = p.m * p.n;
  g.alpha = float(p.alpha);
  g.beta = float(p.beta);
  dispatch_gpu_float(p.c.dtype, "matmul", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    run_gemm<T>(g, stream_of(s));
  });
}

}  // namespace mixt::cuda
