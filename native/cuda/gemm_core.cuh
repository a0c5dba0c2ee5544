// GEMM building blocks shared by matmul and the grouped GEMM.
#pragma once

#include "../kernels/common.h"
#include "common.cuh"

namespace mixt::cuda {

// A batched strided product: C[b] = alpha * A[b] . B[b] + beta * C[b];
// A(i, k) = a[b * a_bs + i * a_rs + k * a_cs], B(k, j) = b[b * b_bs + k * b_rs + j * b_cs].
struct GemmProblem {
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  int64_t a_rs = 0, a_cs = 0, b_rs = 0, b_cs = 0, ldc = 0;
  int64_t a_bs = 0, b_bs = 0, c_bs = 0;
  float alpha = 1.f, beta = 0.f;
};

namespace simt {
constexpr int BM = 64, BN = 64, BK = 16, TM = 4, TN = 4;  // 256 threads, 4x4 outputs each

template <typename T>
__global__ void __launch_bounds__(256) gemm_kernel(GemmProblem p) {
  __shared__ float As[BK][BM + 1];
  __shared__ float Bs[BK][BN + 1];
  const T* A = static_cast<const T*>(p.a) + blockIdx.z * p.a_bs;
  const T* B = static_cast<const T*>(p.b) + blockIdx.z * p.b_bs;
  T* C = static_cast<T*>(p.c) + blockIdx.z * p.c_bs;
  int64_t row0 = int64_t(blockIdx.y) * BM, col0 = int64_t(blockIdx.x) * BN;
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[TM][TN] = {};
  for (int64_t k0 = 0; k0 < p.k; k0 += BK) {
    for (int e = threadIdx.x; e < BM * BK; e += 256) {
      int i = e % BM, kk = e / BM;
      int64_t gi = row0 + i, gk = k0 + kk;
      As[kk][i] = gi < p.m && gk < p.k ? Elem<T>::load(A, gi * p.a_rs + gk * p.a_cs) : 0.f;
    }
    for (int e = threadIdx.x; e < BN * BK; e += 256) {
      int j = e % BN, kk = e / BN;
      int64_t gj = col0 + j, gk = k0 + kk;
      Bs[kk][j] = gj < p.n && gk < p.k ? Elem<T>::load(B, gk * p.b_rs + gj * p.b_cs) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk++) {
      float av[TM], bv[TN];
#pragma unroll
      for (int i = 0; i < TM; i++) av[i] = As[kk][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TN; j++) bv[j] = Bs[kk][tx * TN + j];
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; i++) {
    int64_t gi = row0 + ty * TM + i;
    if (gi >= p.m) continue;
#pragma unroll
    for (int j = 0; j < TN; j++) {
      int64_t gj = col0 + tx * TN + j;
      if (gj >= p.n) continue;
      float v = p.alpha * acc[i][j];
      if (p.beta != 0.f) v += p.beta * Elem<T>::load(C, gi * p.ldc + gj);
      Elem<T>::store(C, gi * p.ldc + gj, v);
    }
  }
}
}  // namespace simt

template <typename T>
void gemm_simt(const GemmProblem& p, cudaStream_t stream) {
  dim3 grid(unsigned((p.n + simt::BN - 1) / simt::BN), unsigned((p.m + simt::BM - 1) / simt::BM), unsigned(p.batch));
  simt::gemm_kernel<T><<<grid, 256, 0, stream>>>(p);
}

}  // namespace mixt::cuda
