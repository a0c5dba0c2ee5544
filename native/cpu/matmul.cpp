#include "../kernels/matmul.h"

#include "gemm.h"

namespace mixt::cpu {

void matmul(const Stream&, const MatmulArgs& p) {
  size_t es = dtype_size(p.c.dtype);
  int64_t a_stride = p.a_batched ? p.m * p.k : 0, b_stride = p.b_batched ? p.k * p.n : 0;
  for (int64_t bi = 0; bi < p.batch; bi++) {
    const char* a = static_cast<const char*>(p.a.data) + size_t(bi * a_stride) * es;
    const char* b = static_cast<const char*>(p.b.data) + size_t(bi * b_stride) * es;
    char* c = static_cast<char*>(p.c.data) + size_t(bi * p.m * p.n) * es;
    GemmOperand ga{a, p.a.dtype, p.trans_a ? 1 : p.k, p.trans_a ? p.m : 1};
    GemmOperand gb{b, p.b.dtype, p.trans_b ? 1 : p.n, p.trans_b ? p.k : 1};
    gemm(p.m, p.n, p.k, p.alpha, ga, gb, p.beta, c, p.c.dtype, p.n);
  }
}

}  // namespace mixt::cpu
