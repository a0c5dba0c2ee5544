// The GEMM core of the CUDA backend, shared by matmul and the grouped GEMM.
//
// A problem is a set of tiles, each a piece of one group's product C_g = A_g . B_g (+ beta C_g),
// where operands are strided views: A(m, k) = A[m * a_rs + k * a_cs], B(k, n) = B[k * b_rs + n * b_cs].
// Groups come from a device offsets array and are found per CTA on the device (no host sync):
//   Plain     one product per batch index (grid z)
//   RowGroups groups split M (forward, dX): the grid covers an upper bound of row tiles
//   DepthGroups groups split K (dW): grid z is the group, each CTA walks its group's rows
//
// Two kernels take the same problem:
//   simt::kernel  exact fp32 FMA (f32; any strides and alignment)
//   tc::kernel    bf16 tensor cores: mma.sync m16n8k16 with fp32 accumulation, ldmatrix (.trans for
//                 MN-major operands), cp.async 16-byte loads into a 3-stage shared-memory pipeline,
//                 rows padded by 16 bytes against bank conflicts. 128x128x32 tiles, 8 warps (2 x 4),
//                 a 64x32 warp tile = 4 x 4 mma tiles.
#pragma once

#include <cuda_bf16.h>

#include "../kernels/common.h"
#include "common.cuh"
#include "hopper_gemm.h"

namespace mixt::cuda {

enum class Grouping : int { Plain = 0, RowGroups = 1, DepthGroups = 2 };

struct GemmProblem {
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
  int64_t m = 0, n = 0, k = 0, batch = 1;  // per group: the grouped dim comes from offsets
  int64_t a_rs = 0, a_cs = 0, b_rs = 0, b_cs = 0, ldc = 0;
  // Plain: per-batch element strides. RowGroups: A and C advance a_bs / c_bs elements per row, B
  // b_bs per group. DepthGroups: A and B advance a_bs / b_bs per depth index, C c_bs per group.
  int64_t a_bs = 0, b_bs = 0, c_bs = 0;
  Grouping grouping = Grouping::Plain;
  const int32_t* offsets = nullptr;
  int groups = 1;
  int64_t total = 0;  // rows (RowGroups) or depth (DepthGroups) over all groups
  float alpha = 1.f, beta = 0.f;
  int* fault_flag = nullptr;
  int fault_tag = 0;
};

// One CTA's piece of work: its group's operands, sizes and the tile origin.
template <typename T>
struct TileJob {
  const T* A;
  const T* B;
  T* C;
  int64_t M, N, K, m0, n0;
};

// Finds the CTA's tile (false: no work). Bad offsets are reported and clamped, never followed
// out of bounds.
template <typename T, int BM, int BN>
__device__ bool resolve_tile(const GemmProblem& p, TileJob<T>& t) {
  const T* A = static_cast<const T*>(p.a);
  const T* B = static_cast<const T*>(p.b);
  T* C = static_cast<T*>(p.c);
  t.n0 = int64_t(blockIdx.x) * BN;
  if (p.grouping == Grouping::Plain) {
    t.A = A + blockIdx.z * p.a_bs;
    t.B = B + blockIdx.z * p.b_bs;
    t.C = C + blockIdx.z * p.c_bs;
    t.M = p.m;
    t.N = p.n;
    t.K = p.k;
    t.m0 = int64_t(blockIdx.y) * BM;
    return t.m0 < t.M && t.n0 < t.N;
  }
  auto bound = [&](int g) -> int64_t {
    int64_t v = p.offsets[g];
    if (v < 0 || v > p.total) {
      if (p.fault_flag && threadIdx.x == 0) report_fault(p.fault_flag, p.fault_tag, kFaultBadOffsets);
      v = v < 0 ? 0 : p.total;
    }
    return v;
  };
  if (blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && threadIdx.x == 0 && p.fault_flag &&
      (p.offsets[0] != 0 || p.offsets[p.groups] > p.total))
    report_fault(p.fault_flag, p.fault_tag, kFaultBadOffsets);
  if (p.grouping == Grouping::DepthGroups) {
    int g = blockIdx.z;
    int64_t r0 = bound(g), r1 = bound(g + 1);
    if (r1 < r0) {
      if (p.fault_flag && threadIdx.x == 0) report_fault(p.fault_flag, p.fault_tag, kFaultBadOffsets);
      r1 = r0;
    }
    t.A = A + r0 * p.a_bs;  // a_bs: elements per depth index
    t.B = B + r0 * p.b_bs;
    t.C = C + int64_t(g) * p.c_bs;  // c_bs: elements per group
    t.M = p.m;
    t.N = p.n;
    t.K = r1 - r0;
    t.m0 = int64_t(blockIdx.y) * BM;
    return t.m0 < t.M && t.n0 < t.N;
  }
  // RowGroups: blockIdx.y counts row tiles over all groups in order.
  int64_t tile = blockIdx.y, before = 0;
  for (int g = 0; g < p.groups; g++) {
    int64_t r0 = bound(g), r1 = bound(g + 1);
    if (r1 < r0) {
      if (p.fault_flag && threadIdx.x == 0) report_fault(p.fault_flag, p.fault_tag, kFaultBadOffsets);
      r1 = r0;
    }
    int64_t tiles = (r1 - r0 + BM - 1) / BM;
    if (tile < before + tiles) {
      t.A = A + r0 * p.a_bs;  // a_bs: elements per row
      t.B = B + int64_t(g) * p.b_bs;  // b_bs: elements per group
      t.C = C + r0 * p.c_bs;
      t.M = r1 - r0;
      t.N = p.n;
      t.K = p.k;
      t.m0 = (tile - before) * BM;
      return t.n0 < t.N;
    }
    before += tiles;
  }
  return false;
}

// Grid for a problem with BM x BN tiles.
inline dim3 gemm_grid(const GemmProblem& p, int bm, int bn) {
  unsigned gx = unsigned((p.n + bn - 1) / bn);
  if (p.grouping == Grouping::Plain) return dim3(gx, unsigned((p.m + bm - 1) / bm), unsigned(p.batch));
  if (p.grouping == Grouping::DepthGroups) return dim3(gx, unsigned((p.m + bm - 1) / bm), unsigned(p.groups));
  return dim3(gx, unsigned((p.total + bm - 1) / bm + p.groups), 1);
}

namespace simt {
constexpr int BM = 64, BN = 64, BK = 16, TM = 4, TN = 4;  // 256 threads, 4x4 outputs each

template <typename T>
__global__ void __launch_bounds__(256) kernel(GemmProblem p) {
  __shared__ float As[BK][BM + 1];
  __shared__ float Bs[BK][BN + 1];
  TileJob<T> t;
  if (!resolve_tile<T, BM, BN>(p, t)) return;
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[TM][TN] = {};
  for (int64_t k0 = 0; k0 < t.K; k0 += BK) {
    for (int e = threadIdx.x; e < BM * BK; e += 256) {
      int i = e % BM, kk = e / BM;
      int64_t gi = t.m0 + i, gk = k0 + kk;
      As[kk][i] = gi < t.M && gk < t.K ? Elem<T>::load(t.A, gi * p.a_rs + gk * p.a_cs) : 0.f;
    }
    for (int e = threadIdx.x; e < BN * BK; e += 256) {
      int j = e % BN, kk = e / BN;
      int64_t gj = t.n0 + j, gk = k0 + kk;
      Bs[kk][j] = gj < t.N && gk < t.K ? Elem<T>::load(t.B, gk * p.b_rs + gj * p.b_cs) : 0.f;
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
    int64_t gi = t.m0 + ty * TM + i;
    if (gi >= t.M) continue;
#pragma unroll
    for (int j = 0; j < TN; j++) {
      int64_t gj = t.n0 + tx * TN + j;
      if (gj >= t.N) continue;
      float v = p.alpha * acc[i][j];
      if (p.beta != 0.f) v += p.beta * Elem<T>::load(t.C, gi * p.ldc + gj);
      Elem<T>::store(t.C, gi * p.ldc + gj, v);
    }
  }
}
}  // namespace simt

namespace tc {
constexpr int BM = 128, BN = 128, BK = 32, STAGES = 3, THREADS = 256, PAD = 8;

// Shared-memory tile sizes (bf16 elements) for each operand layout.
template <bool KMajor, int MN>
struct SmemTile {
  // K-major: [MN][BK + PAD]; MN-major: [BK][MN + PAD]
  static constexpr int rows = KMajor ? MN : BK;
  static constexpr int cols = KMajor ? BK + PAD : MN + PAD;
  static constexpr int elems = rows * cols;
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Loads one BK slice of an operand tile into shared memory with 16-byte cp.async (zero-filled
// outside the operand). For A: MN = M, origin (m0, k0); for B: MN = N, origin (n0, k0).
// KMajor: element (mn, k) at base[mn * ld + k]; else at base[k * ld + mn].
template <bool KMajor, int MN>
__device__ __forceinline__ void load_tile(__nv_bfloat16* s, const __nv_bfloat16* base, int64_t ld, int64_t mn0, int64_t mn_size,
                                          int64_t k0, int64_t k_size) {
  using S = SmemTile<KMajor, MN>;
  constexpr int chunks = MN * BK / 8;
#pragma unroll
  for (int c = threadIdx.x; c < chunks; c += THREADS) {
    int r, col;
    int64_t mn, k;
    if (KMajor) {
      r = c / (BK / 8);
      col = (c % (BK / 8)) * 8;
      mn = mn0 + r;
      k = k0 + col;
    } else {
      r = c / (MN / 8);
      col = (c % (MN / 8)) * 8;
      k = k0 + r;
      mn = mn0 + col;
    }
    bool valid = mn < mn_size && k < k_size;
    const __nv_bfloat16* src = valid ? (KMajor ? base + mn * ld + k : base + k * ld + mn) : base;
    cp_async16(s + r * S::cols + col, src, valid);
  }
}

template <bool AK, bool BK_>
__global__ void __launch_bounds__(THREADS) kernel(GemmProblem p) {
  using SA = SmemTile<AK, BM>;
  using SB = SmemTile<BK_, BN>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* As = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* Bs = As + STAGES * SA::elems;

  TileJob<bf16> job;
  if (!resolve_tile<bf16, BM, BN>(p, job)) return;
  const __nv_bfloat16* A = reinterpret_cast<const __nv_bfloat16*>(job.A);
  const __nv_bfloat16* B = reinterpret_cast<const __nv_bfloat16*>(job.B);
  const int64_t lda = AK ? p.a_rs : p.a_cs;  // stride of the non-contiguous dim
  const int64_t ldb = BK_ ? p.b_cs : p.b_rs;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = (warp / 4) * 64, wn = (warp % 4) * 32;
  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

  const int ktiles = int((job.K + BK - 1) / BK);
  auto load_stage = [&](int kt) {
    int st = kt % STAGES;
    load_tile<AK, BM>(As + st * SA::elems, A, lda, job.m0, job.M, int64_t(kt) * BK, job.K);
    load_tile<BK_, BN>(Bs + st * SB::elems, B, ldb, job.n0, job.N, int64_t(kt) * BK, job.K);
  };
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < ktiles) load_stage(s);
    cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; kt++) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    if (kt + STAGES - 1 < ktiles) load_stage(kt + STAGES - 1);
    cp_async_commit();
    const __nv_bfloat16* as = As + (kt % STAGES) * SA::elems;
    const __nv_bfloat16* bs = Bs + (kt % STAGES) * SB::elems;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[4][4], bf[4][2];
      const int mi = lane / 8;  // which 8x8 matrix this lane addresses
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int m = wm + i * 16;
        if (AK)  // matrices: (m 0-7,k 0-7) (m 8-15,k 0-7) (m 0-7,k 8-15) (m 8-15,k 8-15)
          ldmatrix_x4(af[i], as + (m + (mi & 1) * 8 + lane % 8) * SA::cols + kk + (mi >> 1) * 8);
        else
          ldmatrix_x4_trans(af[i], as + (kk + (mi >> 1) * 8 + lane % 8) * SA::cols + m + (mi & 1) * 8);
      }
#pragma unroll
      for (int j = 0; j < 4; j += 2) {
        const int n = wn + j * 8;
        uint32_t r[4];  // b0, b1 of n-tile j, then of n-tile j + 1
        if (BK_)
          ldmatrix_x4(r, bs + (n + (mi >> 1) * 8 + lane % 8) * SB::cols + kk + (mi & 1) * 8);
        else
          ldmatrix_x4_trans(r, bs + (kk + (mi & 1) * 8 + lane % 8) * SB::cols + n + (mi >> 1) * 8);
        bf[j][0] = r[0];
        bf[j][1] = r[1];
        bf[j + 1][0] = r[2];
        bf[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) mma_bf16(acc[i][j], af[i], bf[j][0], bf[j][1]);
    }
  }
  cp_async_wait<0>();

  // Epilogue: the m16n8 accumulator layout: rows lane/4 and lane/4 + 8, columns 2*(lane%4) + {0,1}.
  __nv_bfloat16* C = reinterpret_cast<__nv_bfloat16*>(job.C);
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        int64_t row = job.m0 + wm + i * 16 + lane / 4 + h * 8;
        int64_t col = job.n0 + wn + j * 8 + 2 * (lane % 4);
        if (row >= job.M || col >= job.N) continue;
        float v0 = p.alpha * acc[i][j][2 * h], v1 = p.alpha * acc[i][j][2 * h + 1];
        __nv_bfloat16* dst = C + row * p.ldc + col;
        if (p.beta != 0.f) {
          v0 += p.beta * __bfloat162float(dst[0]);
          if (col + 1 < job.N) v1 += p.beta * __bfloat162float(dst[1]);
        }
        if (col + 1 < job.N && (reinterpret_cast<uintptr_t>(dst) & 3) == 0) {
          *reinterpret_cast<__nv_bfloat162*>(dst) = __floats2bfloat162_rn(v0, v1);
        } else {
          dst[0] = __float2bfloat16(v0);
          if (col + 1 < job.N) dst[1] = __float2bfloat16(v1);
        }
      }
}

template <bool AK, bool BK_>
constexpr int smem_bytes() {
  return STAGES * (SmemTile<AK, BM>::elems + SmemTile<BK_, BN>::elems) * 2;
}
}  // namespace tc

// Whether the tensor-core kernel can take the problem: bf16, contiguous dims multiples of 8
// (16-byte cp.async), 16-byte aligned bases, unit stride on one side of each operand.
inline bool tc_eligible(const GemmProblem& p, DType dtype, bool& a_kmajor, bool& b_kmajor) {
  if (dtype != DType::BF16) return false;
  auto aligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; };
  if (!aligned(p.a) || !aligned(p.b)) return false;
  if (p.a_cs == 1) a_kmajor = true;
  else if (p.a_rs == 1) a_kmajor = false;
  else return false;
  if (p.b_rs == 1) b_kmajor = true;
  else if (p.b_cs == 1) b_kmajor = false;
  else return false;
  int64_t lda = a_kmajor ? p.a_rs : p.a_cs, ldb = b_kmajor ? p.b_cs : p.b_rs;
  // Every 8-element chunk must be whole: the contiguous extent and every row start are multiples of 8.
  int64_t a_contig = a_kmajor ? p.k : p.m, b_contig = b_kmajor ? p.k : p.n;
  if (p.grouping == Grouping::DepthGroups) {
    // K varies per group; K-major operands would need group starts aligned: only MN-major here.
    if (a_kmajor || b_kmajor) return false;
    a_contig = p.m;
    b_contig = p.n;
  }
  if (p.grouping == Grouping::RowGroups && !a_kmajor) return false;  // rows split across groups
  if (a_contig % 8 || b_contig % 8 || lda % 8 || ldb % 8) return false;
  if (p.a_bs % 8 || p.b_bs % 8) return false;
  return true;
}

template <bool AK, bool BK>
void launch_tc(const GemmProblem& p, cudaStream_t stream) {
  constexpr int bytes = tc::smem_bytes<AK, BK>();
  static thread_local bool configured = false;  // one attribute call per instantiation and thread
  if (!configured) {
    cudaFuncSetAttribute(tc::kernel<AK, BK>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    configured = true;
  }
  tc::kernel<AK, BK><<<gemm_grid(p, tc::BM, tc::BN), tc::THREADS, bytes, stream>>>(p);
}

// Runs a problem on the best kernel that takes it.
template <typename T>
void run_gemm(const GemmProblem& p, cudaStream_t stream) {
  bool ak = true, bk = true;
  if constexpr (std::is_same_v<T, bf16>) {
    int device = 0;
    cudaGetDevice(&device);
    if (hopper::enabled(device) && hopper::try_run(p, stream, device)) return;
    if (tc_eligible(p, DType::BF16, ak, bk)) {
      if (ak && bk) launch_tc<true, true>(p, stream);
      else if (ak) launch_tc<true, false>(p, stream);
      else if (bk) launch_tc<false, true>(p, stream);
      else launch_tc<false, false>(p, stream);
      return;
    }
  }
  simt::kernel<T><<<gemm_grid(p, simt::BM, simt::BN), 256, 0, stream>>>(p);
}

}  // namespace mixt::cuda
