#include "gemm.h"

#include <algorithm>
#include <vector>

#include "parallel.h"

namespace mixt::cpu {
namespace {

// Micro-tile: MR rows x NR columns of C held in registers (vectors of W lanes).
template <typename T>
struct Tile;
template <>
struct Tile<float> {
  static constexpr int W = 8, MR = 6, NR = 16;
  typedef float vec __attribute__((vector_size(32)));
};
template <>
struct Tile<double> {
  static constexpr int W = 4, MR = 6, NR = 8;
  typedef double vec __attribute__((vector_size(32)));
};

constexpr int64_t KC = 256;  // depth of a packed panel (fits L1/L2 with the A strip)
constexpr int64_t MC = 72;   // rows per parallel block (a multiple of MR)

template <typename T>
T load_as(const void* p, DType d, int64_t i) {
  switch (d) {
    case DType::F32: return T(static_cast<const float*>(p)[i]);
    case DType::F64: return T(static_cast<const double*>(p)[i]);
    case DType::BF16: return T(bf16_to_float(static_cast<const uint16_t*>(p)[i]));
    case DType::I32: return T(static_cast<const int32_t*>(p)[i]);
  }
  return T(0);
}

// Packs B[k0:k0+kc, all n] into NR-wide strips: strip s holds kc rows of NR values.
template <typename T>
void pack_b(const GemmOperand& b, int64_t k0, int64_t kc, int64_t n, T* out) {
  constexpr int NR = Tile<T>::NR;
  int64_t strips = (n + NR - 1) / NR;
  parallel_for(strips, 4, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; s++) {
      T* dst = out + s * kc * NR;
      int64_t j0 = s * NR, jn = std::min<int64_t>(NR, n - j0);
      for (int64_t kk = 0; kk < kc; kk++) {
        int64_t row = (k0 + kk) * b.rs;
        for (int64_t j = 0; j < jn; j++) dst[kk * NR + j] = load_as<T>(b.data, b.dtype, row + (j0 + j) * b.cs);
        for (int64_t j = jn; j < NR; j++) dst[kk * NR + j] = T(0);
      }
    }
  });
}

// Packs A[i0:i0+mc, k0:k0+kc] into MR-tall strips: strip r holds kc columns of MR values.
template <typename T>
void pack_a(const GemmOperand& a, int64_t i0, int64_t mc, int64_t k0, int64_t kc, T* out) {
  constexpr int MR = Tile<T>::MR;
  for (int64_t r = 0; r < mc; r += MR) {
    T* dst = out + r * kc;
    int64_t rn = std::min<int64_t>(MR, mc - r);
    for (int64_t kk = 0; kk < kc; kk++) {
      int64_t col = (k0 + kk) * a.cs;
      for (int64_t i = 0; i < rn; i++) dst[kk * MR + i] = load_as<T>(a.data, a.dtype, (i0 + r + i) * a.rs + col);
      for (int64_t i = rn; i < MR; i++) dst[kk * MR + i] = T(0);
    }
  }
}

// acc[MR][NR] = sum over kc of a_strip (x) b_strip. FMA contraction is allowed here only.
template <typename T>
__attribute__((target_clones("arch=x86-64-v3", "default"), optimize("fp-contract=fast"))) void micro_kernel(
    int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict acc) {
  using V = typename Tile<T>::vec;
  constexpr int W = Tile<T>::W, MR = Tile<T>::MR, NV = Tile<T>::NR / W;
  V c[MR][NV];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) c[i][v] = V{} ;
  for (int64_t kk = 0; kk < kc; kk++) {
    V bv[NV];
    for (int v = 0; v < NV; v++) __builtin_memcpy(&bv[v], b + kk * NV * W + v * W, sizeof(V));
    for (int i = 0; i < MR; i++) {
      V av = V{} + a[kk * MR + i];
      for (int v = 0; v < NV; v++) c[i][v] += av * bv[v];
    }
  }
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) __builtin_memcpy(acc + i * NV * W + v * W, &c[i][v], sizeof(V));
}

template <typename T>
void store_c(void* c, DType cd, int64_t idx, T v) {
  switch (cd) {
    case DType::F32: static_cast<float*>(c)[idx] = float(v); break;
    case DType::F64: static_cast<double*>(c)[idx] = double(v); break;
    case DType::BF16: static_cast<uint16_t*>(c)[idx] = float_to_bf16(float(v)); break;
    default: break;
  }
}

template <typename T>
void gemm_typed(int64_t m, int64_t n, int64_t k, T alpha, const GemmOperand& a, const GemmOperand& b, T beta, void* c,
                DType cd, int64_t ldc) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  if (k == 0 || alpha == T(0)) {
    // No product: C = beta * C (beta 0 clears, even over NaN)
    parallel_for(m, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++)
        for (int64_t j = 0; j < n; j++)
          store_c<T>(c, cd, i * ldc + j, beta == T(0) ? T(0) : beta * load_as<T>(c, cd, i * ldc + j));
    });
    return;
  }
  int64_t strips = (n + NR - 1) / NR;
  std::vector<T> bpack(size_t(std::min(k, KC) * strips * NR));
  for (int64_t k0 = 0; k0 < k; k0 += KC) {
    int64_t kc = std::min(KC, k - k0);
    pack_b<T>(b, k0, kc, n, bpack.data());
    T beta_k = k0 == 0 ? beta : T(1);  // later panels accumulate
    int64_t blocks = (m + MC - 1) / MC;
    parallel_for(blocks, 1, [&](int64_t bl0, int64_t bl1) {
      std::vector<T> apack(size_t(MC * kc));
      alignas(64) T acc[MR * NR];
      for (int64_t bl = bl0; bl < bl1; bl++) {
        int64_t i0 = bl * MC, mc = std::min(MC, m - i0);
        pack_a<T>(a, i0, mc, k0, kc, apack.data());
        for (int64_t r = 0; r < mc; r += MR) {
          int64_t rn = std::min<int64_t>(MR, mc - r);
          for (int64_t s = 0; s < strips; s++) {
            micro_kernel<T>(kc, apack.data() + r * kc, bpack.data() + s * kc * NR, acc);
            int64_t j0 = s * NR, jn = std::min<int64_t>(NR, n - j0);
            for (int64_t i = 0; i < rn; i++) {
              int64_t row = (i0 + r + i) * ldc + j0;
              for (int64_t j = 0; j < jn; j++) {
                T v = alpha * acc[i * NR + j];
                if (beta_k != T(0)) v += beta_k * load_as<T>(c, cd, row + j);
                store_c<T>(c, cd, row + j, v);
              }
            }
          }
        }
      }
    });
  }
}

}  // namespace

void gemm(int64_t m, int64_t n, int64_t k, double alpha, const GemmOperand& a, const GemmOperand& b, double beta,
          void* c, DType cdtype, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (cdtype == DType::F64) {
    gemm_typed<double>(m, n, k, alpha, a, b, beta, c, cdtype, ldc);
  } else if (cdtype == DType::BF16 && k > KC) {
    // Accumulate every K panel in float; round to bf16 once.
    std::vector<float> tmp(size_t(m * n));
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++)
        tmp[i * n + j] = beta == 0 ? 0.f : bf16_to_float(static_cast<uint16_t*>(c)[i * ldc + j]);
    gemm_typed<float>(m, n, k, float(alpha), a, b, float(beta), tmp.data(), DType::F32, n);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) static_cast<uint16_t*>(c)[i * ldc + j] = float_to_bf16(tmp[i * n + j]);
  } else {
    gemm_typed<float>(m, n, k, float(alpha), a, b, float(beta), c, cdtype, ldc);
  }
}

}  // namespace mixt::cpu
