// Hopper (sm_90a) grouped GEMM: TMA loads into 128-byte-swizzled shared memory, a 4-stage mbarrier
// ring, wgmma (bf16 -> fp32) issued by two consumer warpgroups while a producer warpgroup
// (its registers given up with setmaxnreg) issues the copies, and a persistent grid whose CTAs walk
// the tiles of all groups in grouped (L2-friendly) order, group sizes read on the device (no per-group
// launches, no host sync). Each consumer keeps one wgmma group in flight: a stage is released when the
// next stage's products have been issued, not after a full wait.
//
// Every index (stage layout, TMA boxes and coordinates, descriptors, accumulator -> output, tile walk)
// comes from hopper_gemm_plan.h, which the host emulator (native/emu) runs against a float64 GEMM.
// Problems: forward and dX of grouped projections and plain matmul (groups split the rows; A K-major,
// B K-major or MN-major, read in place through MN-major descriptors: no transposed copy), and dW
// (groups split the reduction, variable depth per group; both operands MN-major; also matmul(A^T, B) as
// one group). Tiles are 128 x 256 (m64n256k16) unless that pads more columns than 128 x 128. Opt-in with
// MIXT_HOPPER_GEMM=1: the K-major forward passed the grouped-GEMM parity tests on an H100
// (2026-11-22); this version (MN-major operands, dW, the grouped walk, one group in flight) has run
// only on the emulator and through ptxas.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cudaTypedefs.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common.cuh"
#include "gemm_core.cuh"
#include "hopper_gemm.h"
#include "hopper_gemm_plan.h"
#include "sm90.cuh"

namespace mixt::cuda::hopper {
namespace {

using Major = wgmma::gemm::Major;
template <int BN>
using PlanOf = wgmma::gemm::Plan<BN>;  // 128 x BN tiles, BN 128 or 256 (chosen per problem by the column tail)
using Regs = sm90::RegSplit<128, 40, 256, 232, 168, 1>;  // producer 40, consumers 232, at 168 a thread from launch
static_assert(PlanOf<128>::THREADS == 384 && PlanOf<256>::THREADS == 384 && 384 * Regs::launch <= wgmma::kRegsPerSm,
              "launch allocation of one CTA an SM");

struct Params {
  GemmProblem p;  // RowGroups or Plain (batch 1): rows split; DepthGroups: depth split
  wgmma::gemm::GroupSizes sizes;
};

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
using namespace sm90;

// Bad offsets (not starting at 0, decreasing, past the total) are reported once; the walk clamps them.
__device__ void check_offsets(const GemmProblem& p) {
  if (!p.offsets || !p.fault_flag) return;
  bool bad = p.offsets[0] != 0;
  for (int g = 0; g < p.groups && !bad; g++) bad = p.offsets[g + 1] < p.offsets[g] || p.offsets[g + 1] > p.total;
  if (bad) report_fault(p.fault_flag, p.fault_tag, kFaultBadOffsets);
}

// The rows [valid, BK) of a depth-grouped stage belong to the next group: zero them in every box of
// both operands (whole 128-byte rows, so the swizzle does not matter), then make the writes visible to
// wgmma (async proxy) and to the warpgroup. Both consumers zero B: the same zeros, a benign race.
template <int BN>
__device__ void zero_depth_tail(unsigned char* smem, int s, int valid, int cw, int tid) {
  using Plan = PlanOf<BN>;
  const int rows = Plan::BK - valid, a_chunks = rows * 8, b_chunks = rows * 8 * Plan::boxes(Major::MN, Plan::BN);
  for (int c = tid; c < a_chunks + b_chunks; c += 128) {
    const bool a = c < a_chunks;
    const int cc = a ? c : c - a_chunks, box = a ? cw : cc / (rows * 8), r = (cc % (rows * 8)) / 8, chunk = cc % 8;
    const uint32_t off = (a ? Plan::a_stage(s) : Plan::b_stage(s)) + Plan::box_offset(Major::MN, box) +
                         wgmma::gemm::mnmajor_row_offset(valid + r) + chunk * 16;
    *reinterpret_cast<uint4*>(smem + off) = make_uint4(0, 0, 0, 0);
  }
  fence_proxy_async();
  named_barrier(1 + cw, 128);
}

// C[0..1] = v0, v1 (+ beta C), rounded to bf16; only C[0] when the second column is past the end.
__device__ __forceinline__ void store_pair(__nv_bfloat16* dst, float v0, float v1, bool pair, float beta) {
  if (pair && (reinterpret_cast<uintptr_t>(dst) & 3) == 0) {  // one 4-byte store for the two columns
    __nv_bfloat162* dst2 = reinterpret_cast<__nv_bfloat162*>(dst);
    if (beta != 0.f) {
      const float2 old = __bfloat1622float2(*dst2);
      v0 += beta * old.x;
      v1 += beta * old.y;
    }
    *dst2 = __floats2bfloat162_rn(v0, v1);
    return;
  }
  if (beta != 0.f) {
    v0 += beta * __bfloat162float(dst[0]);
    if (pair) v1 += beta * __bfloat162float(dst[1]);
  }
  dst[0] = __float2bfloat16(v0);
  if (pair) dst[1] = __float2bfloat16(v1);
}
#endif

template <int BN, Major BMajor, bool DepthGrouped>
__global__ void __launch_bounds__(PlanOf<BN>::THREADS, 1)
    gemm_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b, Params prm) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Plan = PlanOf<BN>;
  using Tiles = wgmma::gemm::CtaTiles<Plan::BM, Plan::BN, Plan::BK>;
  constexpr Major AMajor = DepthGrouped ? Major::MN : Major::K;
  extern __shared__ __align__(1024) unsigned char raw[];
  unsigned char* smem = raw + ((1024 - (smem_u32(raw) & 1023)) & 1023);
  const uint32_t base = smem_u32(smem);
  const GemmProblem& p = prm.p;
  const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
  if (threadIdx.x == 0) {
    for (int s = 0; s < Plan::STAGES; s++) {
      mbar_init(reinterpret_cast<uint64_t*>(smem + Plan::full_bar(s)), 1);
      mbar_init(reinterpret_cast<uint64_t*>(smem + Plan::empty_bar(s)), Plan::CONSUMERS);
    }
    mbar_fence_init();
    if (blockIdx.x == 0) check_offsets(p);
  }
  __syncthreads();

  if (wg == 0) {
    // producer: one thread issues the copies; the warpgroup gives its registers to the consumers
    Regs::producer();
    if (tid != 0) return;
    uint32_t it = 0;
    for (Tiles w(blockIdx.x); w.next(prm.sizes, p.n, p.k, DepthGrouped, gridDim.x);) {
      const auto& ops = w.ops;
      for (int kt = 0; kt < w.ktiles; kt++, it++) {
        const int s = it % Plan::STAGES;
        const int64_t k0 = ops.k0 + int64_t(kt) * Plan::BK;
        mbar_wait(base + Plan::empty_bar(s), ((it / Plan::STAGES) & 1) ^ 1);
        mbar_expect_tx(base + Plan::full_bar(s), Plan::STAGE_BYTES);
#pragma unroll 1  // rolled: the producer runs in 40 registers
        for (int box = 0; box < Plan::boxes(AMajor, Plan::BM); box++) {
          int64_t c0, c1;
          Plan::box_coords(AMajor, box, ops.a_mn0, k0, c0, c1);
          tma_load_3d(base + Plan::a_stage(s) + Plan::box_offset(AMajor, box), &map_a, int(c0), int(c1), 0, base + Plan::full_bar(s));
        }
#pragma unroll 1
        for (int box = 0; box < Plan::boxes(BMajor, Plan::BN); box++) {
          int64_t c0, c1;
          Plan::box_coords(BMajor, box, ops.b_mn0, k0, c0, c1);
          tma_load_3d(base + Plan::b_stage(s) + Plan::box_offset(BMajor, box), &map_b, int(c0), int(c1), ops.b_group,
                      base + Plan::full_bar(s));
        }
      }
    }
    return;
  }

  Regs::consumer();
  const int cw = wg - 1;  // consumer warpgroup: rows [64 cw, 64 cw + 64) of the tile
  uint32_t it = 0;
  // the same walk as the producer's CtaTiles, with less live state: through CtaTiles, ptxas stopped
  // unrolling the BN 256 epilogue and put the 128 accumulators in local memory (the static check's catch)
  wgmma::gemm::TileWalker<Plan::BM, Plan::BN> walk;
  wgmma::gemm::Tile tile;
  for (int64_t t = blockIdx.x; walk.find(prm.sizes, p.n, t, tile); t += gridDim.x) {
    const int64_t depth = wgmma::gemm::tile_operands(tile, DepthGrouped, p.k).depth;
    const int ktiles = int((depth + Plan::BK - 1) / Plan::BK);
    float d[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; i++) d[i] = 0.f;
    for (int kt = 0; kt < ktiles; kt++, it++) {
      const int s = it % Plan::STAGES;
      mbar_wait(base + Plan::full_bar(s), (it / Plan::STAGES) & 1);
      if constexpr (DepthGrouped) {
        const int64_t valid = depth - int64_t(kt) * Plan::BK;
        if (valid < Plan::BK) zero_depth_tail<BN>(smem, s, int(valid), cw, tid);
      }
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < Plan::BK / 16; kk++)
        wgmma_m64nNk16<BN, AMajor == Major::MN, BMajor == Major::MN>(d, Plan::a_desc(AMajor, base, s, cw, kk), Plan::b_desc(BMajor, base, s, kk),
                                                                      (kt > 0 || kk > 0) ? 1 : 0);
      wgmma_commit();
      // one group in flight: the previous stage's products are done, so its buffers go back
      wgmma_wait<1>();
      if (kt > 0 && tid == 0) mbar_arrive(base + Plan::empty_bar((it - 1) % Plan::STAGES));
    }
    wgmma_wait<0>();
    if (ktiles > 0 && tid == 0) mbar_arrive(base + Plan::empty_bar((it - 1) % Plan::STAGES));
    // epilogue: each register to its output element (plan), alpha and beta applied in fp32
    const int64_t rows_left = wgmma::gemm::tile_rows_left(tile, DepthGrouped, p.m), cols_left = p.n - tile.n0;
    __nv_bfloat16* C = static_cast<__nv_bfloat16*>(p.c);
#pragma unroll
    for (int i = 0; i < BN / 2; i += 2) {
      const int row = Plan::out_row(cw, tid, i), col = Plan::out_col(tid, i);
      if (row < rows_left && col < cols_left)
        store_pair(C + wgmma::gemm::out_offset(tile, DepthGrouped, row, col, p.ldc, p.c_bs), p.alpha * d[i], p.alpha * d[i + 1],
                   col + 1 < cols_left, p.beta);
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

// A bf16 tensor as the plan's 3-D map (128-byte swizzle, zeros out of bounds).
bool encode(CUtensorMap* map, const void* base, const wgmma::gemm::MapShape& s) {
  auto fn = encode_fn();
  if (!fn) return false;
  cuuint64_t dims[3] = {cuuint64_t(s.dim[0]), cuuint64_t(s.dim[1]), cuuint64_t(s.dim[2])};
  cuuint64_t strides[2] = {cuuint64_t(s.stride1) * 2, cuuint64_t(s.stride2 ? s.stride2 : s.stride1 * s.dim[1]) * 2};
  cuuint32_t box[3] = {cuuint32_t(s.box0), cuuint32_t(s.box1), 1};
  cuuint32_t estr[3] = {1, 1, 1};
  return fn(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int BN, Major BMajor, bool DepthGrouped>
bool launch(const GemmProblem& p, const Params& prm, int64_t tiles_upper, cudaStream_t stream, int device) {
  using Plan = PlanOf<BN>;
  CUtensorMap ma, mb;
  const int64_t depth_or_rows = prm.sizes.total;
  if (!encode(&ma, p.a, Plan::a_map(DepthGrouped, depth_or_rows, p.m, p.k)) ||
      !encode(&mb, p.b, Plan::b_map(DepthGrouped, BMajor, prm.sizes.groups, depth_or_rows, p.n, p.k, p.b_bs)))
    return false;
  int sms = 132;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  constexpr int bytes = int(Plan::SMEM_BYTES) + 1024;
  static thread_local bool configured = false;  // one attribute call per instantiation and thread
  if (!configured) {
    cudaFuncSetAttribute(gemm_kernel<BN, BMajor, DepthGrouped>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    configured = true;
  }
  const unsigned grid = unsigned(tiles_upper < sms ? tiles_upper : sms);
  gemm_kernel<BN, BMajor, DepthGrouped><<<grid, Plan::THREADS, bytes, stream>>>(ma, mb, prm);
  return true;
}

bool portable_forced() {
  const char* e = std::getenv("MIXT_GEMM");
  return e && std::strcmp(e, "portable") == 0;
}

bool build_has_sm90a() {
#ifdef MIXT_CUDA_ARCHS
  return std::strstr(MIXT_CUDA_ARCHS, "sm_90a") != nullptr;
#else
  return true;  // a standalone compile (scripts/cuda-static-check.sh) is for sm_90a
#endif
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

}  // namespace

// The policy lib/ops/gemm_dispatch.ts states (and `mixt inspect` prints): opt-in, sm_90 only, only
// where the build holds sm_90a code (the compute_90 PTX has no kernel body), and never with
// MIXT_GEMM=portable.
bool enabled(int device) {
  static const bool on = env_flag("MIXT_HOPPER_GEMM") && !portable_forced() && build_has_sm90a();
  return on && compute_capability(device) == 90;
}

namespace {
// One launch at the tile width the plan picks for n: 128 x 256 tiles unless they would waste columns.
template <Major BMajor, bool DepthGrouped>
bool launch_any(const GemmProblem& p, const Params& prm, int64_t row_tiles_upper, cudaStream_t stream, int device) {
  if (wgmma::gemm::tile_width(p.n) == 256) return launch<256, BMajor, DepthGrouped>(p, prm, row_tiles_upper * ((p.n + 255) / 256), stream, device);
  return launch<128, BMajor, DepthGrouped>(p, prm, row_tiles_upper * ((p.n + 127) / 128), stream, device);
}
}  // namespace

bool try_run(const GemmProblem& p, cudaStream_t stream, int device) {
  if (!aligned16(p.a) || !aligned16(p.b) || p.n == 0) return false;  // TMA: 16-byte aligned bases
  if (p.total >= (int64_t(1) << 31) || p.m >= (int64_t(1) << 31) || p.n >= (int64_t(1) << 31)) return false;  // int coordinates
  constexpr int BM = PlanOf<128>::BM;
  if (p.grouping == Grouping::DepthGroups) {
    // C[g][m][n] = sum over the group's depth d of A[d][m] B[d][n]: both operands MN-major
    const bool ok = p.a_rs == 1 && p.a_cs == p.m && p.a_bs == p.m && p.b_cs == 1 && p.b_rs == p.n && p.b_bs == p.n && p.ldc == p.n &&
                    p.c_bs == p.m * p.n && p.m % 8 == 0 && p.n % 8 == 0 && p.m > 0;  // 16-byte rows
    if (!ok) return false;
    if (!encode_fn()) return false;
    const Params prm{p, {p.offsets, p.groups, p.total, p.m, false}};
    return launch_any<Major::MN, true>(p, prm, int64_t(p.groups) * ((p.m + BM - 1) / BM), stream, device);
  }
  if (p.grouping == Grouping::Plain && p.batch != 1) return false;
  if (p.grouping == Grouping::Plain && p.a_rs == 1 && p.a_cs == p.m && p.b_cs == 1 && p.b_rs == p.n) {
    // matmul(A^T, B) (the tied embedding's gradient): one depth-grouped product, the whole K one group
    if (p.m % 8 || p.n % 8 || p.k == 0 || p.ldc != p.n || !encode_fn()) return false;
    GemmProblem q = p;
    q.a_bs = p.m, q.b_bs = p.n, q.c_bs = p.m * p.n;  // one group: strides of the maps, never followed
    const Params prm{q, {nullptr, 1, p.k, p.m, false}};
    return launch_any<Major::MN, true>(q, prm, (p.m + BM - 1) / BM, stream, device);
  }
  // rows split (forward, dX) or one plain product: A K-major [rows][K], C rows of ldc
  if (p.a_cs != 1 || p.a_rs != p.k || p.k % 8 || p.k == 0) return false;
  const bool plain = p.grouping == Grouping::Plain;
  if (!plain && (p.a_bs != p.k || p.c_bs != p.ldc)) return false;
  const int64_t rows = plain ? p.m : p.total, groups = plain ? 1 : p.groups;
  const bool b_kmajor = p.b_rs == 1 && p.b_cs == p.k, b_nmajor = p.b_cs == 1 && p.b_rs == p.n && p.n % 8 == 0;  // 16-byte rows
  if (!b_kmajor && !b_nmajor) return false;
  if (!plain && p.b_bs != p.n * p.k) return false;
  if (rows == 0) return true;
  if (!encode_fn()) return false;
  GemmProblem q = p;
  q.b_bs = p.n * p.k;  // one plain group: the map's group stride is never followed
  const Params prm{q, {plain ? nullptr : p.offsets, int(groups), rows, rows, true}};
  const int64_t row_tiles = (rows + BM - 1) / BM + groups;  // each group's last tile may be partial
  return b_kmajor ? launch_any<Major::K, false>(q, prm, row_tiles, stream, device) : launch_any<Major::MN, false>(q, prm, row_tiles, stream, device);
}

}  // namespace mixt::cuda::hopper
