#include "../kernels/grouped_gemm.h"

#include <vector>

#include "gemm.h"

namespace mixt::cpu {

void grouped_gemm(const Stream&, const GroupedGemmArgs& p) {
  const int32_t* off = p.offsets.ptr<int32_t>();
  for (int64_t g = 0; g < p.groups; g++) {
    if (off[0] != 0 || off[g + 1] < off[g] || off[p.groups] > p.rows)
      throw Error("ERR_BAD_DATA", "group offsets must rise from 0 to at most " + std::to_string(p.rows) + " (offsets[" +
                                      std::to_string(g + 1) + "] = " + std::to_string(off[g + 1]) + ")");
  }
  size_t es = dtype_size(p.out.dtype);
  const char* a = static_cast<const char*>(p.a.data);
  const char* b = static_cast<const char*>(p.b.data);
  char* c = static_cast<char*>(p.out.data);
  const int64_t N = p.n_out, K = p.k_in;
  for (int64_t g = 0; g < p.groups; g++) {
    int64_t r0 = off[g], m = off[g + 1] - off[g];
    switch (p.kind) {
      case GroupedKind::Forward: {  // y[r0:r0+m, :N] = x[r0.., :K] . w[g]^T
        GemmOperand A{a + r0 * K * es, p.a.dtype, K, 1};
        GemmOperand B{b + g * N * K * es, p.b.dtype, 1, K};  // B(k, n) = w[g][n][k]
        if (m) gemm(m, N, K, 1.0, A, B, p.beta, c + r0 * N * es, p.out.dtype, N);
        break;
      }
      case GroupedKind::DX: {  // dx[r0.., :K] = dy[r0.., :N] . w[g]
        GemmOperand A{a + r0 * N * es, p.a.dtype, N, 1};
        GemmOperand B{b + g * N * K * es, p.b.dtype, K, 1};  // B(n, k) = w[g][n][k]
        if (m) gemm(m, K, N, 1.0, A, B, p.beta, c + r0 * K * es, p.out.dtype, K);
        break;
      }
      case GroupedKind::DW: {  // dw[g] [N, K] = dy[r0.., :N]^T . x[r0.., :K]
        GemmOperand A{a + r0 * N * es, p.a.dtype, 1, N};  // A(n, r) = dy[r][n]
        GemmOperand B{b + r0 * K * es, p.b.dtype, K, 1};  // B(r, k) = x[r][k]
        gemm(N, K, m, 1.0, A, B, p.beta, c + g * N * K * es, p.out.dtype, K);  // m = 0: beta * out
        break;
      }
    }
  }
}

}  // namespace mixt::cpu
