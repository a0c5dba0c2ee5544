// Hopper (sm_90a) attention forward, in the FlashAttention-3 manner: a producer warpgroup loads
// Q once and K/V tiles through TMA into 128-byte-swizzled shared memory (a 2-stage mbarrier ring);
// two consumer warpgroups, 64 query rows each, compute S = Q K^T with wgmma (m64n128k16), run the
// online softmax in registers, and accumulate O += P V with wgmma too (m64nDk16, P straight from the
// S accumulators as the A operand in registers, V read transposed from its swizzled tile). The index
// math (layout, descriptors, the P register mapping) is in hopper_attention_plan.h, run on the host
// model of TMA and wgmma by test/attention_tiles.test.ts. Masks come from the call's granule
// summaries (attention_tiles.h): the key loop is bounded by the block's document and the causal
// diagonal, an empty key tile is never loaded, a full one takes no mask arithmetic; only partial
// tiles evaluate the mask per pair. The row log-sum-exp is saved.
//
// Scope: bf16, head dims 64 and 128, forward only (the backward takes mma_attention.cu or
// attention.cu). Opt-in (MIXT_HOPPER_ATTENTION=1): its first version (PV on mma.sync, every key
// tile rescanned) passed the bf16 parity test on an H100; this one has not run on a GPU yet.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cudaTypedefs.h>

#include <cfloat>
#include <cstdlib>
#include <mutex>

#include "../kernels/attention.h"
#include "attention_tiles.h"
#include "common.cuh"
#include "hopper_attention.h"
#include "hopper_attention_plan.h"
#include "sm90.cuh"

namespace mixt::cuda::hopper {
namespace {

using hopper_attn::BKV;
using hopper_attn::BQ;
using hopper_attn::HALF;
constexpr int THREADS = 384;
// balanced at the 168 of launch: 128 x (168 - 24) freed = 256 x (240 - 168) taken, else the increase
// waits forever (the first split, 32/240, hung on an H100)
using AttnRegs = sm90::RegSplit<128, 24, 256, 240, 168, 1>;

template <int D>
struct alignas(1024) AttnSmem {
  __nv_bfloat16 q[D / HALF][BQ * HALF];
  __nv_bfloat16 k[2][D / HALF][BKV * HALF];
  __nv_bfloat16 v[2][D / HALF][BKV * HALF];
  alignas(8) uint64_t q_full;
  alignas(8) uint64_t full[2];
  alignas(8) uint64_t empty[2];
  // The producer's schedule, one entry per stage, published by the full barrier's arrive (release) and
  // read after its wait (acquire): the key tile's first token (-1: no more tiles) and its class.
  int32_t tile_k0[2], tile_cls[2];
};
// the tiles where hopper_attention_plan.h (and with it the host test) says they are
static_assert(offsetof(AttnSmem<64>, k) == hopper_attn::k_box<64>(0, 0) && offsetof(AttnSmem<64>, v) == hopper_attn::v_box<64>(0, 0) &&
              offsetof(AttnSmem<128>, k) == hopper_attn::k_box<128>(0, 0) && offsetof(AttnSmem<128>, v) == hopper_attn::v_box<128>(0, 0) &&
              offsetof(AttnSmem<128>, q_full) == hopper_attn::tiles_bytes<128>(),
              "shared layout differs from hopper_attention_plan.h");

struct AttnParams {
  __nv_bfloat16* out;  // [T, Hq, D]
  float* lse;          // [Hq, T]
  const int32_t *doc, *span, *pos;
  attn::MaskSpec mask;  // the same ids, for the loop bounds
  attn::TileMap map;    // the call's granule summaries (attention_tiles.cu)
  int64_t tokens;
  int hq, hkv;
  float scale_log2;    // softmax scale * log2(e)
  bool causal;
};

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
using namespace sm90;

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ void compiler_fence() { asm volatile("" ::: "memory"); }

// The key tiles of this CTA's query block (walked by the producer): [first, end) bounded by the block's document and the causal diagonal, empty tiles skipped.
struct KeyWalk {
  attn::IdSummary qs;
  int64_t first, end;
};
__device__ __forceinline__ KeyWalk key_walk(const AttnParams& p, int64_t q0, int64_t q1) {
  KeyWalk w{p.map.block(q0, BQ), 0, 0};
  p.mask.key_range(q0, q1, &w.first, &w.end);
  w.first = attn::align_down(w.first, BKV);
  return w;
}
#endif

template <int D>
__global__ void __launch_bounds__(THREADS, 1)
    attn_fwd(const __grid_constant__ CUtensorMap mq, const __grid_constant__ CUtensorMap mk, const __grid_constant__ CUtensorMap mv, AttnParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char raw[];
  auto& sm = *reinterpret_cast<AttnSmem<D>*>((reinterpret_cast<uintptr_t>(raw) + 1023) & ~uintptr_t(1023));
  const int h = blockIdx.y, hk = h / (p.hq / p.hkv);
  const int64_t q0 = int64_t(blockIdx.x) * BQ, q1 = min(p.tokens, q0 + BQ);
  const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
  constexpr uint32_t KV_BYTES = D * BKV * 2;
  if (threadIdx.x == 0) {
    mbar_init(&sm.q_full, 1);
    for (int s = 0; s < 2; s++) {
      mbar_init(&sm.full[s], 1);
      mbar_init(&sm.empty[s], 2);
    }
    mbar_fence_init();
  }
  __syncthreads();

  if (wg == 0) {
    AttnRegs::producer();
    if (tid == 0) {
      // The producer alone walks the tiles (bounded by document and diagonal, empty ones skipped) and
      // tells the consumers which tile each stage holds.
      const KeyWalk walk = key_walk(p, q0, q1);
      mbar_expect_tx(&sm.q_full, D * BQ * 2);
      for (int hh = 0; hh < D / HALF; hh++) tma_load_2d(sm.q[hh], &mq, h * D + hh * HALF, int(q0), &sm.q_full);
      uint32_t it = 0;
      int cls;
      for (int64_t k0 = p.map.next_key_tile(walk.qs, walk.first, walk.end, BKV, &cls); k0 < walk.end;
           k0 = p.map.next_key_tile(walk.qs, k0 + BKV, walk.end, BKV, &cls)) {
        const int s = it & 1;
        mbar_wait(&sm.empty[s], ((it >> 1) & 1) ^ 1);
        sm.tile_k0[s] = int32_t(k0);
        sm.tile_cls[s] = cls;
        compiler_fence();  // the schedule is written before the arrive publishes it
        mbar_expect_tx(&sm.full[s], 2 * KV_BYTES);
        for (int hh = 0; hh < D / HALF; hh++) {
          tma_load_2d(sm.k[s][hh], &mk, hk * D + hh * HALF, int(k0), &sm.full[s]);
          tma_load_2d(sm.v[s][hh], &mv, hk * D + hh * HALF, int(k0), &sm.full[s]);
        }
        it++;
      }
      const int s = it & 1;  // the end: a stage whose tile is -1
      mbar_wait(&sm.empty[s], ((it >> 1) & 1) ^ 1);
      sm.tile_k0[s] = -1;
      compiler_fence();
      mbar_arrive(&sm.full[s]);
    }
    return;
  }
  AttnRegs::consumer();
  const int cw = wg - 1, warp = tid / 32, lane = tid % 32;
  const int rA = cw * 64 + warp * 16 + lane / 4, rB = rA + 8;  // this thread's two query rows in the tile
  const int64_t iA = q0 + rA, iB = q0 + rB;
  float o[D / 2];  // the m64nD accumulator: o[4j + e] is row A (e < 2) or B, dim 8j + 2 (lane % 4) + e % 2
#pragma unroll
  for (int j = 0; j < D / 2; j++) o[j] = 0.f;
  const uint32_t base = smem_u32(&sm);
  float mA = -FLT_MAX, mB = -FLT_MAX, lA = 0.f, lB = 0.f;
  mbar_wait(&sm.q_full, 0);
  for (uint32_t it = 0;; it++) {
    const int s = it & 1;
    mbar_wait(&sm.full[s], (it >> 1) & 1);
    compiler_fence();  // the schedule is read after the wait
    const int64_t k0 = sm.tile_k0[s];
    if (k0 < 0) break;
    const int cls = sm.tile_cls[s];
    const int64_t k1 = min(p.tokens, k0 + BKV);
    // S = Q K^T for this warpgroup's 64 rows and the tile's 128 keys
    float d[64];
    wgmma_fence();
#pragma unroll
    for (int hh = 0; hh < D / HALF; hh++)
#pragma unroll
      for (int kk = 0; kk < HALF / 16; kk++) {
        const uint64_t da = hopper_attn::kmajor_desc(base + hopper_attn::q_slice(hh, cw, kk));
        const uint64_t db = hopper_attn::kmajor_desc(base + hopper_attn::k_slice<D>(s, hh, kk));
        wgmma_m64n128k16(d, da, db, (hh > 0 || kk > 0) ? 1 : 0);
      }
    wgmma_commit();
    wgmma_wait<0>();
    // mask and scale; chunk j holds keys 8j + 2 (lane % 4) + {0, 1} of rows A (d[4j..]) and B (d[4j+2..])
    float rowmaxA = -FLT_MAX, rowmaxB = -FLT_MAX;
#pragma unroll
    for (int j = 0; j < 16; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int64_t key = k0 + 8 * j + 2 * (lane % 4) + (e & 1);
        const int64_t qi = e < 2 ? iA : iB;
        // a full tile holds T's keys only and every pair is visible (rows past T are never stored)
        const bool vis = cls == attn::kTileFull || (key < k1 && qi < p.tokens && attention_visible(p.doc, p.span, p.pos, p.causal, qi, key));
        float v = vis ? d[4 * j + e] * p.scale_log2 : -FLT_MAX;
        d[4 * j + e] = v;
        if (e < 2) rowmaxA = fmaxf(rowmaxA, v);
        else rowmaxB = fmaxf(rowmaxB, v);
      }
    rowmaxA = fmaxf(rowmaxA, __shfl_xor_sync(0xffffffffu, rowmaxA, 1));
    rowmaxA = fmaxf(rowmaxA, __shfl_xor_sync(0xffffffffu, rowmaxA, 2));
    rowmaxB = fmaxf(rowmaxB, __shfl_xor_sync(0xffffffffu, rowmaxB, 1));
    rowmaxB = fmaxf(rowmaxB, __shfl_xor_sync(0xffffffffu, rowmaxB, 2));
    const float nA = fmaxf(mA, rowmaxA), nB = fmaxf(mB, rowmaxB);
    const float cA = nA == -FLT_MAX ? 1.f : exp2f(mA - nA), cB = nB == -FLT_MAX ? 1.f : exp2f(mB - nB);
    float sumA = 0.f, sumB = 0.f;
#pragma unroll
    for (int j = 0; j < 16; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const float m = e < 2 ? nA : nB;
        const float pr = d[4 * j + e] == -FLT_MAX ? 0.f : exp2f(d[4 * j + e] - m);
        d[4 * j + e] = pr;
        if (e < 2) sumA += pr;
        else sumB += pr;
      }
    lA = lA * cA + sumA;  // the quad's partial sums are added at the end
    lB = lB * cB + sumB;
    mA = nA;
    mB = nB;
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
      o[4 * j + 0] *= cA;
      o[4 * j + 1] *= cA;
      o[4 * j + 2] *= cB;
      o[4 * j + 3] *= cB;
    }
    // O += P V with wgmma, P from the S accumulators as the A operand in registers (16 keys a step),
    // V read transposed from its swizzled tile
    // (every A register packed before the fence: one written between the wgmmas makes ptxas serialise
    // them, warning C7519)
    uint32_t a[BKV / 16][4];
#pragma unroll
    for (int kk = 0; kk < BKV / 16; kk++)
#pragma unroll
      for (int r = 0; r < 4; r++) a[kk][r] = pack_bf16(d[hopper_attn::p_reg(kk, r)], d[hopper_attn::p_reg(kk, r) + 1]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BKV / 16; kk++) {
      const uint64_t dv = hopper_attn::v_desc(base + hopper_attn::v_slice<D>(s, kk));
      if constexpr (D == 128) wgmma_m64n128k16_rs_tb(o, a[kk], dv, 1);
      else wgmma_m64n64k16_rs_tb(o, a[kk], dv, 1);
    }
    wgmma_commit();
    wgmma_wait<0>();
    __syncwarp();
    asm volatile("bar.sync %0, 128;\n" ::"r"(1 + cw));  // this warpgroup is done with the stage
    if (tid == 0) mbar_arrive(&sm.empty[s]);
  }
  lA += __shfl_xor_sync(0xffffffffu, lA, 1);
  lA += __shfl_xor_sync(0xffffffffu, lA, 2);
  lB += __shfl_xor_sync(0xffffffffu, lB, 1);
  lB += __shfl_xor_sync(0xffffffffu, lB, 2);
  const float invA = lA > 0.f ? 1.f / lA : 0.f, invB = lB > 0.f ? 1.f / lB : 0.f;
#pragma unroll
  for (int j = 0; j < D / 8; j++) {
    const int col = 8 * j + 2 * (lane % 4);
    if (iA < p.tokens)
      *reinterpret_cast<__nv_bfloat162*>(p.out + (iA * p.hq + h) * D + col) = __floats2bfloat162_rn(o[4 * j] * invA, o[4 * j + 1] * invA);
    if (iB < p.tokens)
      *reinterpret_cast<__nv_bfloat162*>(p.out + (iB * p.hq + h) * D + col) = __floats2bfloat162_rn(o[4 * j + 2] * invB, o[4 * j + 3] * invB);
  }
  if (lane % 4 == 0) {
    const float ln2 = 0.6931471805599453f;
    if (iA < p.tokens) p.lse[int64_t(h) * p.tokens + iA] = lA > 0.f ? (mA + log2f(lA)) * ln2 : -INFINITY;
    if (iB < p.tokens) p.lse[int64_t(h) * p.tokens + iB] = lB > 0.f ? (mB + log2f(lB)) * ln2 : -INFINITY;
  }
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) == cudaSuccess && q == cudaDriverEntryPointSuccess)
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
    else
      cudaGetLastError();
  });
  return fn;
}

// [T, H * D] bf16 as boxes of 64 columns x 128 rows, 128-byte swizzle.
bool encode_rows(CUtensorMap* m, const void* base, int64_t rows, int64_t cols) {
  auto fn = encoder();
  if (!fn) return false;
  cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  cuuint64_t strides[1] = {cuuint64_t(cols) * 2};
  cuuint32_t box[2] = {HALF, 128};
  cuuint32_t es[2] = {1, 1};
  return fn(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int D>
bool launch(const Stream& st, const AttentionArgs& a, const TensorView& out, const TensorView& lse) {
  cudaStream_t stream = stream_of(st);
  CUtensorMap mq, mk, mv;
  if (!encode_rows(&mq, a.q.data, a.tokens, a.hq * D) || !encode_rows(&mk, a.k.data, a.tokens, a.hkv * D) ||
      !encode_rows(&mv, a.v.data, a.tokens, a.hkv * D))
    return false;
  AttnParams p{};
  p.out = static_cast<__nv_bfloat16*>(out.data);
  p.lse = static_cast<float*>(lse.data);
  p.doc = static_cast<const int32_t*>(a.doc_ids.data);
  p.span = static_cast<const int32_t*>(a.span_ids.data);
  p.pos = static_cast<const int32_t*>(a.positions.data);
  p.mask = mask_spec(a);
  p.tokens = a.tokens;
  p.hq = int(a.hq);
  p.hkv = int(a.hkv);
  p.scale_log2 = float(a.scale * 1.4426950408889634);
  p.causal = a.causal;
  p.map = build_tile_map(st, p.mask);
  const int bytes = int(sizeof(AttnSmem<D>)) + 1024;
  static thread_local bool configured = false;
  if (!configured) {
    cudaFuncSetAttribute(attn_fwd<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    configured = true;
  }
  dim3 grid(unsigned((a.tokens + BQ - 1) / BQ), unsigned(a.hq));
  attn_fwd<D><<<grid, THREADS, bytes, stream>>>(mq, mk, mv, p);
  cudaFreeAsync(const_cast<attn::IdSummary*>(p.map.granules), stream);
  return true;
}

}  // namespace

bool attention_enabled(int device) {
  static const bool on = env_flag("MIXT_HOPPER_ATTENTION");
  return on && compute_capability(device) == 90;
}

bool try_attention_forward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& lse) {
  if (a.q.dtype != DType::BF16 || (a.dim != 64 && a.dim != 128) || a.tokens == 0) return false;
  if (a.tokens > INT32_MAX) return false;  // key tiles are walked with 32-bit token indices (-1 ends the walk)
  if ((reinterpret_cast<uintptr_t>(a.q.data) | reinterpret_cast<uintptr_t>(a.k.data) | reinterpret_cast<uintptr_t>(a.v.data)) & 15) return false;
  return a.dim == 64 ? launch<64>(s, a, out, lse) : launch<128>(s, a, out, lse);
}

}  // namespace mixt::cuda::hopper
