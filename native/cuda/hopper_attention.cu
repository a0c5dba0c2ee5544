// Hopper (sm_90a) attention forward, in the FlashAttention-3 manner: a producer warpgroup loads
// Q once and K/V tiles through TMA into 128-byte-swizzled shared memory (a 2-stage mbarrier ring);
// two consumer warpgroups, 64 query rows each, compute S = Q K^T with wgmma (m64n128k16), run the
// online softmax in registers, and accumulate O += P V with mma.sync (P straight from the S
// accumulators, V through ldmatrix.trans on the swizzled tile). Masks are tile classes: a key tile
// no query of the CTA can see is never loaded; a tile every pair of which is visible takes no mask
// arithmetic; only boundary tiles evaluate the mask per pair. The row log-sum-exp is saved.
//
// Scope: bf16, head dims 64 and 128, forward only (the backward stays on attention.cu). Opt-in
// (MIXT_HOPPER_ATTENTION=1) until it has run against the reference on an H100, which it has not:
// no GPU was lent to the session that wrote it.
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
#include "sm90.cuh"

namespace mixt::cuda::hopper {
namespace {

constexpr int BQ = 128, BKV = 128, THREADS = 384, HALF = 64;  // 64 bf16 = one 128-byte swizzled row

// The setmaxnreg split: one producer warpgroup gives up registers, two consumer warpgroups take them.
// setmaxnreg.inc waits until the registers are free, so the increase must be paid by the decrease at
// the launch allocation (65536 / 384 threads, rounded down to 8: 168); the first split, 32/240, hung
// on an H100 (128 x 136 freed < 256 x 72 taken).
constexpr int kLaunchRegs = 65536 / THREADS / 8 * 8, kProducerRegs = 24, kConsumerRegs = 240;
static_assert(kProducerRegs % 8 == 0 && kConsumerRegs % 8 == 0 && kProducerRegs >= 24 && kConsumerRegs <= 256, "setmaxnreg takes 24..256 in steps of 8");
static_assert(128 * (kLaunchRegs - kProducerRegs) >= 2 * 128 * (kConsumerRegs - kLaunchRegs),
              "setmaxnreg split: the consumers' increase must be paid by the producer's decrease, else it waits forever");

template <int D>
struct alignas(1024) AttnSmem {
  __nv_bfloat16 q[D / HALF][BQ * HALF];
  __nv_bfloat16 k[2][D / HALF][BKV * HALF];
  __nv_bfloat16 v[2][D / HALF][BKV * HALF];
  alignas(8) uint64_t q_full;
  alignas(8) uint64_t full[2];
  alignas(8) uint64_t empty[2];
};

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

__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Address of the 16-byte chunk holding elements [c8 * 8, c8 * 8 + 8) of row r in a 128-byte-swizzled
// tile of 64-element rows: the chunk index is XORed with the row index modulo 8.
__device__ __forceinline__ const __nv_bfloat16* swz(const __nv_bfloat16* tile, int r, int c8) {
  return tile + r * HALF + ((c8 ^ (r & 7)) * 8);
}

// The key tiles of this CTA's query block, in the same order for the producer and the consumers:
// [first, end) bounded by the block's document and the causal diagonal, empty tiles skipped.
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
  const KeyWalk walk = key_walk(p, q0, q1);  // every thread walks the same tiles

  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
    if (tid == 0) {
      mbar_expect_tx(&sm.q_full, D * BQ * 2);
      for (int hh = 0; hh < D / HALF; hh++) tma_load_2d(sm.q[hh], &mq, h * D + hh * HALF, int(q0), &sm.q_full);
      uint32_t it = 0;
      int cls;
      for (int64_t k0 = p.map.next_key_tile(walk.qs, walk.first, walk.end, BKV, &cls); k0 < walk.end;
           k0 = p.map.next_key_tile(walk.qs, k0 + BKV, walk.end, BKV, &cls)) {
        const int s = it & 1;
        mbar_wait(&sm.empty[s], ((it >> 1) & 1) ^ 1);
        mbar_expect_tx(&sm.full[s], 2 * KV_BYTES);
        for (int hh = 0; hh < D / HALF; hh++) {
          tma_load_2d(sm.k[s][hh], &mk, hk * D + hh * HALF, int(k0), &sm.full[s]);
          tma_load_2d(sm.v[s][hh], &mv, hk * D + hh * HALF, int(k0), &sm.full[s]);
        }
        it++;
      }
    }
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));
  const int cw = wg - 1, warp = tid / 32, lane = tid % 32;
  const int rA = cw * 64 + warp * 16 + lane / 4, rB = rA + 8;  // this thread's two query rows in the tile
  const int64_t iA = q0 + rA, iB = q0 + rB;
  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float mA = -FLT_MAX, mB = -FLT_MAX, lA = 0.f, lB = 0.f;
  mbar_wait(&sm.q_full, 0);
  uint32_t it = 0;
  int cls;
  for (int64_t k0 = p.map.next_key_tile(walk.qs, walk.first, walk.end, BKV, &cls); k0 < walk.end;
       k0 = p.map.next_key_tile(walk.qs, k0 + BKV, walk.end, BKV, &cls)) {
    const int64_t k1 = min(p.tokens, k0 + BKV);
    const int s = it & 1;
    mbar_wait(&sm.full[s], (it >> 1) & 1);
    // S = Q K^T for this warpgroup's 64 rows and the tile's 128 keys
    float d[64];
    wgmma_fence();
#pragma unroll
    for (int hh = 0; hh < D / HALF; hh++)
#pragma unroll
      for (int kk = 0; kk < HALF / 16; kk++) {
        const uint64_t da = smem_desc_sw128(reinterpret_cast<const char*>(sm.q[hh]) + cw * 64 * 128 + kk * 32);
        const uint64_t db = smem_desc_sw128(reinterpret_cast<const char*>(sm.k[s][hh]) + kk * 32);
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
        bool vis = key < k1 && qi < p.tokens;
        if (vis && cls == attn::kTilePartial) vis = attention_visible(p.doc, p.span, p.pos, p.causal, qi, key);
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
      o[j][0] *= cA;
      o[j][1] *= cA;
      o[j][2] *= cB;
      o[j][3] *= cB;
    }
    // O += P V: P's accumulator layout is the mma A-fragment layout, 16 keys at a time
#pragma unroll
    for (int kk = 0; kk < BKV / 16; kk++) {
      uint32_t a[4] = {pack_bf16(d[8 * kk + 0], d[8 * kk + 1]), pack_bf16(d[8 * kk + 2], d[8 * kk + 3]),
                       pack_bf16(d[8 * kk + 4], d[8 * kk + 5]), pack_bf16(d[8 * kk + 6], d[8 * kk + 7])};
#pragma unroll
      for (int j = 0; j < D / 8; j += 2) {
        // V rows = keys 16kk + {0..15}, columns = dims 8j .. 8j + 15 (two n8 tiles)
        const int mi = lane / 8;
        const int key = 16 * kk + (mi & 1) * 8 + lane % 8;
        const int dim = 8 * j + (mi >> 1) * 8;
        uint32_t r[4];
        ldsm_x4_t(r, swz(sm.v[s][dim / HALF], key, (dim % HALF) / 8));
        mma16816(o[j], a, r[0], r[1]);
        mma16816(o[j + 1], a, r[2], r[3]);
      }
    }
    __syncwarp();
    asm volatile("bar.sync %0, 128;\n" ::"r"(1 + cw));  // this warpgroup is done with the stage
    if (tid == 0) mbar_arrive(&sm.empty[s]);
    it++;
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
      *reinterpret_cast<__nv_bfloat162*>(p.out + (iA * p.hq + h) * D + col) = __floats2bfloat162_rn(o[j][0] * invA, o[j][1] * invA);
    if (iB < p.tokens)
      *reinterpret_cast<__nv_bfloat162*>(p.out + (iB * p.hq + h) * D + col) = __floats2bfloat162_rn(o[j][2] * invB, o[j][3] * invB);
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
  if ((reinterpret_cast<uintptr_t>(a.q.data) | reinterpret_cast<uintptr_t>(a.k.data) | reinterpret_cast<uintptr_t>(a.v.data)) & 15) return false;
  return a.dim == 64 ? launch<64>(s, a, out, lse) : launch<128>(s, a, out, lse);
}

}  // namespace mixt::cuda::hopper
