// Hopper (sm_90a) grouped GEMM: TMA loads into 128-byte-swizzled shared memory, a 4-stage mbarrier
// pipeline, wgmma (m64n128k16, bf16 -> fp32) issued by two consumer warpgroups while a producer
// warpgroup (its registers given up with setmaxnreg) issues the copies, and a persistent grid whose
// CTAs walk the tiles of all groups in order (tile -> group found on the device from the offsets;
// no per-group launches, no host sync).
//
// Scope of this version: A K-major; B K-major (the forward y = x . W^T of grouped projections,
// matmul with transB) or N-major through a transposed copy (the dX of grouped projections, matmul);
// dW (groups split the reduction) stays on the mma.sync kernel (gemm_core.cuh). Opt-in with
// MIXT_HOPPER_GEMM=1: the K-major path passed the grouped-GEMM parity tests on an H100
// (2026-11-22) but is not yet timed; the N-major path has not run on a GPU.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cudaTypedefs.h>

#include <cstdlib>
#include <mutex>

#include "common.cuh"
#include "gemm_core.cuh"
#include "hopper_gemm.h"
#include "sm90.cuh"

namespace mixt::cuda::hopper {
namespace {

constexpr int BM = 128, BN = 128, BK = 64, STAGES = 4, THREADS = 384;
[[maybe_unused]] constexpr int TILE_BYTES = BM * BK * 2;  // one operand stage: 16 KiB

struct alignas(1024) Smem {
  __nv_bfloat16 a[STAGES][BM * BK];
  __nv_bfloat16 b[STAGES][BN * BK];
  alignas(8) uint64_t full[STAGES];
  alignas(8) uint64_t empty[STAGES];
};

struct Params {
  GemmProblem p;  // RowGroups or Plain (batch 1): sizes, offsets, C, beta
  int64_t n_tiles;
};

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
using namespace sm90;

// Tile t of the problem: (group, rows of the group, row and column origin); false past the end.
__device__ bool find_tile(const GemmProblem& p, int64_t n_tiles, int64_t t, int64_t& row0, int64_t& rows, int64_t& m0, int64_t& n0, int& g) {
  const int64_t mt = t / n_tiles;
  n0 = (t % n_tiles) * BN;
  if (p.grouping == Grouping::Plain) {
    g = 0;
    row0 = 0;
    rows = p.m;
    m0 = mt * BM;
    return m0 < rows;
  }
  int64_t before = 0;
  for (g = 0; g < p.groups; g++) {
    int64_t r0 = p.offsets[g], r1 = p.offsets[g + 1];
    r0 = r0 < 0 ? 0 : r0 > p.total ? p.total : r0;
    r1 = r1 < r0 ? r0 : r1 > p.total ? p.total : r1;
    int64_t tiles = (r1 - r0 + BM - 1) / BM;
    if (mt < before + tiles) {
      row0 = r0;
      rows = r1 - r0;
      m0 = (mt - before) * BM;
      return true;
    }
    before += tiles;
  }
  return false;
}
#endif

__global__ void __launch_bounds__(THREADS, 1)
    gemm_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b, Params prm) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char raw[];
  Smem& sm = *reinterpret_cast<Smem*>((reinterpret_cast<uintptr_t>(raw) + 1023) & ~uintptr_t(1023));
  const GemmProblem& p = prm.p;
  const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
  const int ktiles = int((p.k + BK - 1) / BK);
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; s++) {
      mbar_init(&sm.full[s], 1);
      mbar_init(&sm.empty[s], 2);
    }
    mbar_fence_init();
  }
  __syncthreads();

  if (wg == 0) {
    // producer: one thread issues the copies; the warpgroup gives its registers to the consumers
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::);
    if (tid == 0) {
      uint32_t it = 0;
      int64_t row0, rows, m0, n0;
      int g;
      for (int64_t t = blockIdx.x; find_tile(p, prm.n_tiles, t, row0, rows, m0, n0, g); t += gridDim.x) {
        for (int kt = 0; kt < ktiles; kt++, it++) {
          const int s = it % STAGES;
          mbar_wait(&sm.empty[s], ((it / STAGES) & 1) ^ 1);
          mbar_expect_tx(&sm.full[s], 2 * TILE_BYTES);
          tma_load_2d(sm.a[s], &map_a, kt * BK, int(row0 + m0), &sm.full[s]);
          tma_load_2d(sm.b[s], &map_b, kt * BK, int(int64_t(g) * p.n + n0), &sm.full[s]);
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::);
    const int cw = wg - 1;  // consumer warpgroup: rows [64 cw, 64 cw + 64) of the tile
    uint32_t it = 0;
    int64_t row0, rows, m0, n0;
    int g;
    for (int64_t t = blockIdx.x; find_tile(p, prm.n_tiles, t, row0, rows, m0, n0, g); t += gridDim.x) {
      float d[64];
#pragma unroll
      for (int i = 0; i < 64; i++) d[i] = 0.f;
      for (int kt = 0; kt < ktiles; kt++, it++) {
        const int s = it % STAGES;
        mbar_wait(&sm.full[s], (it / STAGES) & 1);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < BK / 16; kk++) {
          // within a 128-byte swizzled row, a k16 step is 32 bytes further
          const uint64_t da = smem_desc_sw128(reinterpret_cast<const char*>(sm.a[s]) + cw * 64 * 128 + kk * 32);
          const uint64_t db = smem_desc_sw128(reinterpret_cast<const char*>(sm.b[s]) + kk * 32);
          wgmma_m64n128k16(d, da, db, (kt > 0 || kk > 0) ? 1 : 0);
        }
        wgmma_commit();
        wgmma_wait<0>();
        if (tid == 0) mbar_arrive(&sm.empty[s]);
      }
      // epilogue: accumulator layout of m64nN: warp w owns rows 16w..16w+15; chunk j holds
      // rows lane/4 (+8), columns 8j + 2 (lane % 4) + {0, 1}
      const int warp = tid / 32, lane = tid % 32;
      __nv_bfloat16* C = static_cast<__nv_bfloat16*>(p.c) + (row0 * p.c_bs);
#pragma unroll
      for (int j = 0; j < BN / 8; j++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
          const int64_t r = m0 + cw * 64 + warp * 16 + lane / 4 + h * 8;
          const int64_t c = n0 + j * 8 + 2 * (lane % 4);
          if (r >= rows || c >= p.n) continue;
          float v0 = p.alpha * d[4 * j + 2 * h], v1 = p.alpha * d[4 * j + 2 * h + 1];
          __nv_bfloat16* dst = C + r * p.ldc + c;
          if (p.beta != 0.f) {
            v0 += p.beta * __bfloat162float(dst[0]);
            if (c + 1 < p.n) v1 += p.beta * __bfloat162float(dst[1]);
          }
          dst[0] = __float2bfloat16(v0);
          if (c + 1 < p.n) dst[1] = __float2bfloat16(v1);
        }
    }
  }
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
    else
      cudaGetLastError();
  });
  return fn;
}

// A [rows, K] bf16 row-major matrix as TMA boxes of 64 (K) x 128 rows, 128-byte swizzle.
bool encode(CUtensorMap* map, const void* base, int64_t rows, int64_t k) {
  auto fn = encode_fn();
  if (!fn) return false;
  cuuint64_t dims[2] = {cuuint64_t(k), cuuint64_t(rows)};
  cuuint64_t strides[1] = {cuuint64_t(k) * 2};
  cuuint32_t box[2] = {BK, BM};
  cuuint32_t estr[2] = {1, 1};
  return fn(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace

bool enabled(int device) {
  static const bool on = env_flag("MIXT_HOPPER_GEMM");
  return on && compute_capability(device) == 90;
}

namespace {

// Launches a problem whose A and B are both K-major and 16-byte aligned.
bool launch_kmajor(const GemmProblem& p, int64_t rows, int64_t groups, cudaStream_t stream, int device) {
  CUtensorMap ma, mb;
  if (!encode(&ma, p.a, rows, p.k) || !encode(&mb, p.b, groups * p.n, p.k)) return false;
  Params prm{p, (p.n + BN - 1) / BN};
  if (p.grouping == Grouping::Plain) prm.p.c_bs = 0;  // rows of C start at row 0
  const int64_t upper = ((rows + BM - 1) / BM + groups) * prm.n_tiles;
  int sms = 132;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int bytes = int(sizeof(Smem)) + 1024;
  static thread_local bool configured = false;
  if (!configured) {
    cudaFuncSetAttribute(gemm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    configured = true;
  }
  const unsigned grid = unsigned(upper < sms ? upper : sms);
  gemm_kernel<<<grid, THREADS, bytes, stream>>>(ma, mb, prm);
  return true;
}

// dst[g][n][k] = src[g * src_bs + k * n_count + n]: a tile of 32 x 32 through shared memory, so both
// the reads and the writes are coalesced.
__global__ void transpose_groups(const __nv_bfloat16* src, __nv_bfloat16* dst, int64_t k_count, int64_t n_count, int64_t src_bs) {
  __shared__ __nv_bfloat16 tile[32][33];
  const int64_t g = blockIdx.z, k0 = int64_t(blockIdx.y) * 32, n0 = int64_t(blockIdx.x) * 32;
  const __nv_bfloat16* s = src + g * src_bs;
  __nv_bfloat16* d = dst + g * n_count * k_count;
  for (int r = threadIdx.y; r < 32; r += blockDim.y) {
    const int64_t k = k0 + r, n = n0 + threadIdx.x;
    if (k < k_count && n < n_count) tile[r][threadIdx.x] = s[k * n_count + n];
  }
  __syncthreads();
  for (int r = threadIdx.y; r < 32; r += blockDim.y) {
    const int64_t n = n0 + r, k = k0 + threadIdx.x;
    if (k < k_count && n < n_count) d[n * k_count + k] = tile[threadIdx.x][r];
  }
}

}  // namespace

bool try_run(const GemmProblem& p, cudaStream_t stream, int device) {
  // K-major A ([rows, K]), bf16, 16-byte aligned rows, one batch; B K-major ([G * N, K]) or
  // N-major ([G][K, N]: the dX of grouped projections, matmul without transB)
  if (p.a_cs != 1 || p.a_rs != p.k || p.k % 8 || p.k == 0) return false;
  if (p.grouping == Grouping::DepthGroups || (p.grouping == Grouping::Plain && p.batch != 1)) return false;
  const bool b_kmajor = p.b_rs == 1 && p.b_cs == p.k, b_nmajor = p.b_cs == 1 && p.b_rs == p.n && p.n > 1;
  if (!b_kmajor && !b_nmajor) return false;
  if ((reinterpret_cast<uintptr_t>(p.a) | (b_kmajor ? reinterpret_cast<uintptr_t>(p.b) : 0)) & 15) return false;
  const int64_t rows = p.grouping == Grouping::Plain ? p.m : p.total;
  const int64_t groups = p.grouping == Grouping::Plain ? 1 : p.groups;
  if (rows == 0 || p.n == 0) return true;
  if (!encode_fn()) return false;
  if (b_kmajor) return launch_kmajor(p, rows, groups, stream, device);
  // N-major B: a K-major copy first (one pass over the weights, G * N * K * 4 bytes of traffic: a
  // few percent of the GEMM at training shapes) until the kernel reads MN-major operands itself.
  if (groups > 65535) return false;
  void* bt = nullptr;
  const size_t bytes = size_t(groups * p.n * p.k) * 2;
  cudaError_t e = cudaMallocAsync(&bt, bytes, stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return false;  // the mma.sync kernel needs no workspace
  }
  transpose_groups<<<dim3(unsigned((p.n + 31) / 32), unsigned((p.k + 31) / 32), unsigned(groups)), dim3(32, 8), 0, stream>>>(
      static_cast<const __nv_bfloat16*>(p.b), static_cast<__nv_bfloat16*>(bt), p.k, p.n, p.grouping == Grouping::Plain ? 0 : p.b_bs);
  GemmProblem q = p;
  q.b = bt;
  q.b_rs = 1;
  q.b_cs = p.k;
  q.b_bs = p.n * p.k;
  const bool ok = launch_kmajor(q, rows, groups, stream, device);
  cudaFreeAsync(bt, stream);
  return ok;
}

}  // namespace mixt::cuda::hopper
