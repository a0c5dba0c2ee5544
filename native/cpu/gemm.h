// The CPU GEMM core every matrix product of the CPU backend goes through (matmul, grouped GEMM,
// attention's reference, the LM head): packed panels, a register-blocked micro-kernel cloned for
// AVX2+FMA at run time, parallel over row blocks. Operands are strided views, so transposes cost
// nothing; f32 and bf16 accumulate in float, f64 in double.
#pragma once

#include "../kernels/common.h"

namespace mixt::cpu {

struct GemmOperand {
  const void* data;
  DType dtype;
  int64_t rs, cs;  // element (i, j) is data[i * rs + j * cs]
};

// C[m, n] (row stride ldc, dtype cdtype) = alpha * A[m, k] . B[k, n] + beta * C
void gemm(int64_t m, int64_t n, int64_t k, double alpha, const GemmOperand& a, const GemmOperand& b, double beta,
          void* c, DType cdtype, int64_t ldc);

}  // namespace mixt::cpu
