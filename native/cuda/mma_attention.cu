// Attention on tensor cores for sm_80 and later (mma.sync), flash-attention 2 style: no T x T
// matrix ever exists. Opt-in (MIXT_MMA_ATTENTION=1) beside the portable kernels of attention.cu
// until it has run against the CPU reference on a GPU: it has not (no GPU was lent to the sessions
// that wrote it; its tile order and arithmetic are emulated on the host by test/native/attention_tiles.cpp).
//
// One algorithm per pass, written once over a warp-tile product interface (WarpMM) with two
// implementations: bf16 on tensor cores (ldmatrix + mma.sync m16n8k16, fp32 accumulation) and an
// exact fp32 SIMT path for f32 that computes the same fragment layout with fmaf (no TF32).
//
//   forward   CTA = 64 query rows of one head (4 warps x 16 rows). Q stays in shared memory; the
//             CTA walks key tiles of BN keys: S = Q K^T, mask, online softmax (running max and sum
//             per row, the sum kept per thread and reduced once at the end), O += P V. Saves lse.
//   backward  delta = rowsum(dO * O) first (one warp per row, f32 scratch). Then two kernels with no
//             atomics, each deterministic:
//             dq:   CTA = 64 query rows of one head; per key tile recompute S and P = exp(S - lse),
//                   dP = dO V^T, dS = P (dP - delta), dQ += dS K.
//             dkdv: CTA = 64 keys of one kv head; for each query head of its GQA group and each
//                   query tile, S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T Q.
//             Recomputing S and dP in both kernels costs two extra tile products per pair, and buys
//             no fp32 dQ scratch, no atomics and bit-reproducible gradients.
//
// Masking (native/kernels/attention_tiles.h, checked on the host by test/attention_tiles.test.ts):
// every loop is bounded by the document range of its rows (doc ids are sorted; attention_tiles.cu
// reports unsorted ids as bad data) and, for a plain causal mask, by the diagonal. The call's
// granule summaries (min/max of doc, pos and span ids per 16 tokens, one kernel per call) classify
// each aligned tile pair: an empty tile is never loaded, a full one (one document and before the
// diagonal, or inside one image span) skips the per-element mask. Rows or keys past T read as zeros,
// are masked as columns, and are never stored. A row that sees no key writes 0 and lse -inf; the
// backward turns lse -inf into +inf so its P is exactly 0.
//
// Loads: K/V tiles (Q/dO tiles in dkdv) are double-buffered with cp.async (pipelined_tiles): the
// next non-empty tile's copies are in flight while the current one is computed.
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "../kernels/attention.h"
#include "attention_tiles.h"
#include "common.cuh"
#include "mma_attention.h"

namespace mixt::cuda::mma {
namespace {

using attn::IdSummary;
using attn::MaskSpec;
using attn::TileMap;
using attn::TokenIds;


// ---- kernels ----


constexpr int kWarps = 4, kThreads = kWarps * 32, kBlockM = kWarps * 16;
constexpr unsigned kFull = 0xffffffffu;

// Shared-memory element: raw bf16 bits for the tensor-core path, float for the SIMT path.
template <typename T>
struct SmemOf;
template <>
struct SmemOf<float> {
  using type = float;
};
template <>
struct SmemOf<bf16> {
  using type = uint16_t;
};

template <typename T, int D>
struct Cfg {
  using SE = typename SmemOf<T>::type;
  // Rows padded by 16 bytes: ldmatrix's eight 16-byte rows and the SIMT reads of eight rows land
  // in distinct banks.
  static constexpr int kStride = D + 16 / int(sizeof(SE));
  // Key (forward, dq) or query (dkdv) tile: as wide as registers and shared memory allow.
  static constexpr int kFwdN = (D == 128 && sizeof(T) == 4) ? 32 : 64;
  static constexpr int kBwdN = sizeof(T) == 4 ? (D == 128 ? 16 : 32) : (D == 128 ? 32 : 64);
};

struct Params {
  const void *q, *k, *v, *o, *dout;
  void *out, *dq, *dk, *dv;
  float* lse;           // forward output [Hq, T]
  const float* lse_in;  // backward input [Hq, T]
  float* delta;         // backward scratch [Hq, T]
  MaskSpec mask;
  TileMap map;  // the call's granule summaries (attention_tiles.cu)
  int Hq, Hkv;
  float scale;
  bool vec16;  // every [T, H, D] pointer is 16-byte aligned: tiles load in 16-byte vectors
};

__device__ __forceinline__ uint16_t raw_of(const bf16& x) { return x.bits; }
__device__ __forceinline__ float raw_of(const float& x) { return x; }

// cp.async (sm_80+): 16 bytes global -> shared without a register round trip; src_bytes 0 writes zeros.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(uint32_t(__cvta_generic_to_shared(dst))), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// dst[r][:] = rows row0 + r of head h of a [T, H, D] tensor, zeros past T. 16-byte aligned tensors go
// through cp.async (complete at the caller's cp_async_wait + barrier), others through registers.
template <typename T, int D>
__device__ void load_tile(typename Cfg<T, D>::SE* dst, const T* src, int64_t row0, int rows, int64_t T_, int H, int h,
                          bool vec16) {
  using SE = typename Cfg<T, D>::SE;
  constexpr int S = Cfg<T, D>::kStride;
  if (vec16) {
    constexpr int kPer = 16 / int(sizeof(T)), kChunks = D / kPer;
    for (int c = threadIdx.x; c < rows * kChunks; c += kThreads) {
      const int r = c / kChunks, x = (c % kChunks) * kPer;
      const int64_t t = row0 + r;
      cp_async16(dst + r * S + x, t < T_ ? src + (t * H + h) * D + x : src, t < T_ ? 16 : 0);
    }
  } else {
    for (int c = threadIdx.x; c < rows * D; c += kThreads) {
      const int r = c / D, x = c % D;
      const int64_t t = row0 + r;
      dst[r * S + x] = t < T_ ? raw_of(src[(t * H + h) * D + x]) : SE(0);
    }
  }
}

__device__ void load_ids(const MaskSpec& m, int64_t t0, int n, TokenIds* dst) {
  for (int c = threadIdx.x; c < n; c += kThreads) {
    const int64_t t = t0 + c;
    dst[c] = t < m.T ? m.ids(t) : TokenIds{0, 0, -1};  // past T: masked by the column check
  }
}

// Accumulators of a 16 x N warp tile use the mma C layout: c[n][r] is row (lane / 4) + 8 * (r / 2),
// column 8 * n + 2 * (lane % 4) + r % 2.
__device__ __forceinline__ int frag_row(int r) { return ((threadIdx.x & 31) >> 2) + 8 * (r >> 1); }
__device__ __forceinline__ int frag_col(int n, int r) { return n * 8 + 2 * (threadIdx.x & 3) + (r & 1); }

// ---- tensor-core warp products (bf16 operands, fp32 accumulation) ----

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// Two floats as a bf16 pair, lo in the low half (round to nearest even).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

template <typename SE>
struct WarpMM;

template <>
struct WarpMM<uint16_t> {
  // c[16 x N] += A[16 x K] . B^T; A: shared rows (16 of them, stride S), B: shared [N rows][K].
  template <int N, int K, int S>
  static __device__ __forceinline__ void nt(float (&c)[N / 8][4], const uint16_t* a, const uint16_t* b) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int kk = 0; kk < K / 16; kk++) {
      uint32_t af[4];
      // matrices: rows 0-7 / 8-15 at k 0-7, then rows 0-7 / 8-15 at k 8-15 (the A register order)
      ldsm_x4(af, a + (lane % 16) * S + kk * 16 + (lane / 16) * 8);
#pragma unroll
      for (int np = 0; np < N / 16; np++) {
        uint32_t bf[4];
        // matrices: n 0-7 at k 0-7, n 0-7 at k 8-15, n 8-15 at k 0-7, n 8-15 at k 8-15
        ldsm_x4(bf, b + (np * 16 + (lane / 16) * 8 + lane % 8) * S + kk * 16 + ((lane / 8) % 2) * 8);
        mma_bf16(c[2 * np], af, bf[0], bf[1]);
        mma_bf16(c[2 * np + 1], af, bf[2], bf[3]);
      }
    }
  }
  // c[16 x N] += A . B; A: 16 x K accumulators in registers (rounded to bf16), B: shared [K rows][N].
  template <int N, int K, int S>
  static __device__ __forceinline__ void nn(float (&c)[N / 8][4], const float (&a)[K / 8][4], const uint16_t* b) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int kk = 0; kk < K / 16; kk++) {
      // The C layout of two adjacent 8-column tiles is the A layout of one 16-wide k step.
      const uint32_t af[4] = {pack_bf16(a[2 * kk][0], a[2 * kk][1]), pack_bf16(a[2 * kk][2], a[2 * kk][3]),
                              pack_bf16(a[2 * kk + 1][0], a[2 * kk + 1][1]), pack_bf16(a[2 * kk + 1][2], a[2 * kk + 1][3])};
#pragma unroll
      for (int np = 0; np < N / 16; np++) {
        uint32_t bf[4];
        // transposed matrices: k 0-7 at n 0-7, k 8-15 at n 0-7, k 0-7 at n 8-15, k 8-15 at n 8-15
        ldsm_x4_trans(bf, b + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * S + np * 16 + (lane / 16) * 8);
        mma_bf16(c[2 * np], af, bf[0], bf[1]);
        mma_bf16(c[2 * np + 1], af, bf[2], bf[3]);
      }
    }
  }
};

// ---- exact fp32 SIMT warp products in the same fragment layout ----

template <>
struct WarpMM<float> {
  template <int N, int K, int S>
  static __device__ __forceinline__ void nt(float (&c)[N / 8][4], const float* a, const float* b) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll 4
    for (int k = 0; k < K; k++) {
      const float a0 = a[g * S + k], a1 = a[(g + 8) * S + k];
#pragma unroll
      for (int n = 0; n < N / 8; n++) {
        const float b0 = b[(n * 8 + 2 * t) * S + k], b1 = b[(n * 8 + 2 * t + 1) * S + k];
        c[n][0] = fmaf(a0, b0, c[n][0]);
        c[n][1] = fmaf(a0, b1, c[n][1]);
        c[n][2] = fmaf(a1, b0, c[n][2]);
        c[n][3] = fmaf(a1, b1, c[n][3]);
      }
    }
  }
  template <int N, int K, int S>
  static __device__ __forceinline__ void nn(float (&c)[N / 8][4], const float (&a)[K / 8][4], const float* b) {
    const int lane = threadIdx.x & 31, t = lane & 3;
#pragma unroll
    for (int k = 0; k < K; k++) {
      // A[row][k] lives in the lane of this row's quad that holds column k.
      const int src = (lane & ~3) | ((k & 7) >> 1);
      const float a0 = __shfl_sync(kFull, a[k / 8][k & 1], src);
      const float a1 = __shfl_sync(kFull, a[k / 8][2 + (k & 1)], src);
#pragma unroll
      for (int n = 0; n < N / 8; n++) {
        const float2 bv = *reinterpret_cast<const float2*>(b + k * S + n * 8 + 2 * t);
        c[n][0] = fmaf(a0, bv.x, c[n][0]);
        c[n][1] = fmaf(a0, bv.y, c[n][1]);
        c[n][2] = fmaf(a1, bv.x, c[n][2]);
        c[n][3] = fmaf(a1, bv.y, c[n][3]);
      }
    }
  }
};

// Stores rows of a 16 x D warp tile (times `mul`) into head h of a [T, H, D] tensor, rows past T
// skipped.
template <typename T, int D>
__device__ void store_rows(T* dst, const float (&c)[D / 8][4], int64_t row0, int64_t T_, int H, int h, float mul) {
#pragma unroll
  for (int r = 0; r < 4; r++) {
    const int64_t t = row0 + frag_row(r);
    if (t >= T_) continue;
#pragma unroll
    for (int n = 0; n < D / 8; n++) Elem<T>::store(dst, (t * H + h) * D + frag_col(n, r), c[n][r] * mul);
  }
}

// The ids of this thread's two fragment rows (wrow + frag_row(0) and + frag_row(2)); rows past T
// get placeholder ids and are never stored.
__device__ __forceinline__ void fragment_row_ids(const MaskSpec& m, int64_t wrow, TokenIds (&ids)[2]) {
#pragma unroll
  for (int rr = 0; rr < 2; rr++) {
    const int64_t t = wrow + frag_row(2 * rr);
    ids[rr] = t < m.T ? m.ids(t) : TokenIds{0, 0, -1};
  }
}

// Walks the non-empty tiles of the other side (key tiles for a block of queries, query tiles for a
// block of keys), double-buffered: while body(t, all, buf) computes on the tile in buffer `buf`,
// stage(next tile, buf ^ 1) has its cp.async copies in flight. next(t, &cls) gives the first
// non-empty tile at or after t (or end) and its class; `all` means every pair is visible (no
// per-element mask). Every thread walks the same tiles (the classes come from the call's summaries),
// so the barriers match. Loads the caller issued before the walk complete with its first tile.
template <int BN, typename Next, typename Stage, typename Body>
__device__ __forceinline__ void pipelined_tiles(int64_t first, int64_t end, Next&& next, Stage&& stage, Body&& body) {
  int cls = attn::kTileEmpty, next_cls = attn::kTileEmpty;
  int64_t t = next(first, &cls);
  if (t < end) stage(t, 0);
  cp_async_commit();
  for (int buf = 0; t < end; buf ^= 1) {
    const int64_t tn = next(t + BN, &next_cls);
    if (tn < end) stage(tn, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // this tile's copies (and the caller's) have landed; the next tile's may not
    __syncthreads();
    body(t, cls == attn::kTileFull, buf);
    __syncthreads();  // every reader is done with `buf` before the next iteration refills it
    t = tn;
    cls = next_cls;
  }
  cp_async_wait<0>();  // no copy outlives the walk (a block with no tile still issued its own loads)
  __syncthreads();
}

// Whether the pair of fragment element (query q, key k) is visible; `token` is the tile column's
// token index (past T: masked).
__device__ __forceinline__ bool element_visible(const MaskSpec& m, bool all, int64_t token, const TokenIds& q, const TokenIds& k) {
  return all || (token < m.T && attn::ids_visible(m.causal, q, k));
}

// The CTA's block of kBlockM query rows of head h (kv head g): its warp's first row, the ids of the
// thread's fragment rows and the keys it may see.
struct QueryBlock {
  int h, g, warp;
  int64_t q0, wrow, kbeg, kend;
  TokenIds rid[2];
};

__device__ __forceinline__ QueryBlock query_block(const Params& p) {
  const MaskSpec& m = p.mask;
  QueryBlock b;
  b.h = blockIdx.y;
  b.g = b.h / (p.Hq / p.Hkv);
  b.warp = threadIdx.x >> 5;
  b.q0 = int64_t(blockIdx.x) * kBlockM;
  b.wrow = b.q0 + b.warp * 16;
  fragment_row_ids(m, b.wrow, b.rid);
  m.key_range(b.q0, min(b.q0 + kBlockM, m.T), &b.kbeg, &b.kend);  // the tile walk starts at kbeg rounded down
  return b;
}

// Tiles of the other side double-buffered in shared memory: two row tensors A[2][BN], B[2][BN] (rows
// of stride S: K and V for a query block, Q and dO for a key block), the rows' ids and kScalars
// floats a row (lse and delta for a key block).
template <typename T, int D, int BN, int kScalars>
struct TileBuffers {
  using SE = typename Cfg<T, D>::SE;
  static constexpr int S = Cfg<T, D>::kStride;
  SE *a, *b;
  TokenIds* ids;
  float* scalars;
  __device__ TileBuffers(SE* base)
      : a(base), b(base + 2 * BN * S), ids(reinterpret_cast<TokenIds*>(base + 4 * BN * S)), scalars(reinterpret_cast<float*>(ids + 2 * BN)) {}
  static constexpr size_t bytes() { return size_t(4 * BN * S) * sizeof(SE) + 2 * BN * (sizeof(TokenIds) + kScalars * sizeof(float)); }
  __device__ SE* a_of(int buf) const { return a + buf * BN * S; }
  __device__ SE* b_of(int buf) const { return b + buf * BN * S; }
  __device__ TokenIds* ids_of(int buf) const { return ids + buf * BN; }
  __device__ float* scalars_of(int i, int buf) const { return scalars + (2 * i + buf) * BN; }
  // Issues rows t0 .. t0 + BN of head h of x and y ([T, H, D]) into buffer `buf` by cp.async, their ids
  // by plain stores.
  __device__ void stage(const Params& p, const void* x, const void* y, int64_t t0, int H, int h, int buf) const {
    load_tile<T, D>(a_of(buf), static_cast<const T*>(x), t0, BN, p.mask.T, H, h, p.vec16);
    load_tile<T, D>(b_of(buf), static_cast<const T*>(y), t0, BN, p.mask.T, H, h, p.vec16);
    load_ids(p.mask, t0, BN, ids_of(buf));
  }
};
template <typename T, int D, int BN>
using KeyBuffers = TileBuffers<T, D, BN, 0>;  // K, V
template <typename T, int D, int BN>
using QueryBuffers = TileBuffers<T, D, BN, 2>;  // Q, dO, lse, delta

// The key walk of a query block: its live key tiles from kbeg rounded down to kend, staged into kv.
template <typename T, int D, int BN, typename Body>
__device__ __forceinline__ void walk_keys(const Params& p, const QueryBlock& b, const KeyBuffers<T, D, BN>& kv, Body&& body) {
  // the block's summary re-merged at each step (four granules, cached) rather than held in registers:
  // dq f32 D128 spills on sm_80 otherwise
  auto next = [&](int64_t t, int* cls) { return p.map.next_key_tile(p.map.block(b.q0, kBlockM), t, b.kend, BN, cls); };
  auto stage = [&](int64_t k0, int buf) { kv.stage(p, p.k, p.v, k0, p.Hkv, b.g, buf); };
  pipelined_tiles<BN>(attn::align_down(b.kbeg, BN), b.kend, next, stage, body);
}

// ---- forward ----

template <typename T, int D, int BN>
__global__ void __launch_bounds__(kThreads) forward_kernel(Params p) {
  using SE = typename Cfg<T, D>::SE;
  constexpr int S = Cfg<T, D>::kStride;
  extern __shared__ __align__(16) unsigned char smem[];
  SE* sQ = reinterpret_cast<SE*>(smem);
  const KeyBuffers<T, D, BN> kv(sQ + kBlockM * S);

  const MaskSpec& m = p.mask;
  const QueryBlock b = query_block(p);
  const int h = b.h, warp = b.warp;
  const int64_t wrow = b.wrow;
  const TokenIds* rid = b.rid;
  load_tile<T, D>(sQ, static_cast<const T*>(p.q), b.q0, kBlockM, m.T, p.Hq, h, p.vec16);

  float o[D / 8][4] = {};
  float mx[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  walk_keys(p, b, kv, [&](int64_t k0, bool all, int buf) {
    const TokenIds* sIds = kv.ids_of(buf);
    float s[BN / 8][4] = {};
    WarpMM<SE>::template nt<BN, D, S>(s, sQ + warp * 16 * S, kv.a_of(buf));
#pragma unroll
    for (int n = 0; n < BN / 8; n++)
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const int c = frag_col(n, r);
        s[n][r] = element_visible(m, all, k0 + c, rid[r >> 1], sIds[c]) ? s[n][r] * p.scale : -INFINITY;
      }
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
      float bm = -INFINITY;
#pragma unroll
      for (int n = 0; n < BN / 8; n++) bm = fmaxf(bm, fmaxf(s[n][2 * rr], s[n][2 * rr + 1]));
      bm = fmaxf(bm, __shfl_xor_sync(kFull, bm, 1));
      bm = fmaxf(bm, __shfl_xor_sync(kFull, bm, 2));
      const float mnew = fmaxf(mx[rr], bm);
      const float base = mnew == -INFINITY ? 0.f : mnew;  // a row that has seen nothing stays at 0
      const float alpha = expf(mx[rr] - base);
      float sum = 0.f;
#pragma unroll
      for (int n = 0; n < BN / 8; n++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const float pv = expf(s[n][2 * rr + e] - base);
          s[n][2 * rr + e] = pv;
          sum += pv;
        }
      l[rr] = l[rr] * alpha + sum;
      mx[rr] = mnew;
#pragma unroll
      for (int n = 0; n < D / 8; n++) {
        o[n][2 * rr] *= alpha;
        o[n][2 * rr + 1] *= alpha;
      }
    }
    WarpMM<SE>::template nn<D, BN, S>(o, s, kv.b_of(buf));
  });

  float inv[2];
#pragma unroll
  for (int rr = 0; rr < 2; rr++) {
    float sum = l[rr];
    sum += __shfl_xor_sync(kFull, sum, 1);
    sum += __shfl_xor_sync(kFull, sum, 2);
    inv[rr] = sum > 0.f ? 1.f / sum : 0.f;
    const int64_t t = wrow + frag_row(2 * rr);
    if (t < m.T && (threadIdx.x & 3) == 0) p.lse[int64_t(h) * m.T + t] = sum > 0.f ? mx[rr] + logf(sum) : -INFINITY;
  }
#pragma unroll
  for (int n = 0; n < D / 8; n++)
#pragma unroll
    for (int r = 0; r < 4; r++) o[n][r] *= inv[r >> 1];
  store_rows<T, D>(static_cast<T*>(p.out), o, wrow, m.T, p.Hq, h, 1.f);
}

// ---- backward ----

// delta[h][t] = sum_d dOut[t, h, d] * out[t, h, d]; one warp per (token, head) row.

template <typename T>
__global__ void delta_kernel(const T* o, const T* dout, float* delta, int64_t T_, int Hq, int D) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * blockDim.x / 32;
  for (int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; row < T_ * Hq; row += warps) {
    float s = 0.f;
    for (int d = lane; d < D; d += 32) s += Elem<T>::load(o, row * D + d) * Elem<T>::load(dout, row * D + d);
#pragma unroll
    for (int off = 16; off; off >>= 1) s += __shfl_xor_sync(kFull, s, off);
    if (lane == 0) delta[(row % Hq) * T_ + row / Hq] = s;
  }
}

// lse of a row that saw nothing (-inf) becomes +inf, so exp(s - lse) is exactly 0 for it.
__device__ __forceinline__ float lse_for_backward(float v) { return v == -INFINITY ? INFINITY : v; }

template <typename T, int D, int BN>
__global__ void __launch_bounds__(kThreads) dq_kernel(Params p) {
  using SE = typename Cfg<T, D>::SE;
  constexpr int S = Cfg<T, D>::kStride;
  extern __shared__ __align__(16) unsigned char smem[];
  SE* sQ = reinterpret_cast<SE*>(smem);
  SE* sdO = sQ + kBlockM * S;
  const KeyBuffers<T, D, BN> kv(sdO + kBlockM * S);

  const MaskSpec& m = p.mask;
  const QueryBlock b = query_block(p);
  const int h = b.h, warp = b.warp;
  const int64_t wrow = b.wrow;
  const TokenIds* rid = b.rid;
  load_tile<T, D>(sQ, static_cast<const T*>(p.q), b.q0, kBlockM, m.T, p.Hq, h, p.vec16);
  load_tile<T, D>(sdO, static_cast<const T*>(p.dout), b.q0, kBlockM, m.T, p.Hq, h, p.vec16);
  float lse[2], delta[2];
#pragma unroll
  for (int rr = 0; rr < 2; rr++) {
    const int64_t t = wrow + frag_row(2 * rr);
    const bool ok = t < m.T;
    lse[rr] = ok ? lse_for_backward(p.lse_in[int64_t(h) * m.T + t]) : INFINITY;
    delta[rr] = ok ? p.delta[int64_t(h) * m.T + t] : 0.f;
  }
  float dq[D / 8][4] = {};
  walk_keys(p, b, kv, [&](int64_t k0, bool all, int buf) {
    const TokenIds* sIds = kv.ids_of(buf);
    float s[BN / 8][4] = {}, dp[BN / 8][4] = {};
    WarpMM<SE>::template nt<BN, D, S>(s, sQ + warp * 16 * S, kv.a_of(buf));
    WarpMM<SE>::template nt<BN, D, S>(dp, sdO + warp * 16 * S, kv.b_of(buf));
#pragma unroll
    for (int n = 0; n < BN / 8; n++)
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const int c = frag_col(n, r);
        const float pv = element_visible(m, all, k0 + c, rid[r >> 1], sIds[c]) ? expf(s[n][r] * p.scale - lse[r >> 1]) : 0.f;
        s[n][r] = pv * (dp[n][r] - delta[r >> 1]);  // dS
      }
    WarpMM<SE>::template nn<D, BN, S>(dq, s, kv.a_of(buf));
  });
  store_rows<T, D>(static_cast<T*>(p.dq), dq, wrow, m.T, p.Hq, h, p.scale);
}

// Query tile q0 of head h into buffer `buf` of the dkdv kernel: Q, dO, ids, lse and delta.
template <typename T, int D, int BN>
__device__ void stage_queries(const Params& p, const QueryBuffers<T, D, BN>& qb, int64_t q0, int h, int buf) {
  const MaskSpec& m = p.mask;
  qb.stage(p, p.q, p.dout, q0, p.Hq, h, buf);
  float *lse = qb.scalars_of(0, buf), *delta = qb.scalars_of(1, buf);
  for (int c = threadIdx.x; c < BN; c += kThreads) {
    const int64_t t = q0 + c;
    lse[c] = t < m.T ? lse_for_backward(p.lse_in[int64_t(h) * m.T + t]) : INFINITY;
    delta[c] = t < m.T ? p.delta[int64_t(h) * m.T + t] : 0.f;
  }
}

template <typename T, int D, int BN>
__global__ void __launch_bounds__(kThreads) dkdv_kernel(Params p) {
  using SE = typename Cfg<T, D>::SE;
  constexpr int S = Cfg<T, D>::kStride;
  extern __shared__ __align__(16) unsigned char smem[];
  SE* sK = reinterpret_cast<SE*>(smem);
  SE* sV = sK + kBlockM * S;
  const QueryBuffers<T, D, BN> qb(sV + kBlockM * S);

  const MaskSpec& m = p.mask;
  const int g = blockIdx.y, group = p.Hq / p.Hkv, warp = threadIdx.x >> 5;
  const int64_t k0 = int64_t(blockIdx.x) * kBlockM, kn = min(int64_t(kBlockM), m.T - k0);
  const int64_t wrow = k0 + warp * 16;

  load_tile<T, D>(sK, static_cast<const T*>(p.k), k0, kBlockM, m.T, p.Hkv, g, p.vec16);
  load_tile<T, D>(sV, static_cast<const T*>(p.v), k0, kBlockM, m.T, p.Hkv, g, p.vec16);
  // the block's key ids in shared memory, not registers (bf16 D 128 is at the 255-register limit)
  TokenIds* sKid = reinterpret_cast<TokenIds*>(reinterpret_cast<unsigned char*>(sV + kBlockM * S) + QueryBuffers<T, D, BN>::bytes());
  load_ids(m, k0, kBlockM, sKid);  // past T: placeholders, never stored
  IdSummary* sKs = reinterpret_cast<IdSummary*>(sKid + kBlockM);  // the block's summary, likewise
  if (threadIdx.x == 0) *sKs = p.map.block(k0, kBlockM);
  __syncthreads();
  const IdSummary& ks = *sKs;
  int64_t qbeg, qend;
  m.query_range(k0, k0 + kn, &qbeg, &qend);
  auto next = [&](int64_t q0, int* cls) { return p.map.next_query_tile(ks, q0, qend, BN, cls); };

  float dk[D / 8][4] = {}, dv[D / 8][4] = {};
  // The query heads of the GQA group in order, each a pipelined walk of its query tiles (one walk
  // over all of them, through a combined tile index, spilled at bf16 D 128).
  for (int h = g * group; h < (g + 1) * group; h++) {
    auto stage = [&](int64_t q0, int buf) { stage_queries<T, D, BN>(p, qb, q0, h, buf); };
    pipelined_tiles<BN>(attn::align_down(qbeg, BN), qend, next, stage, [&](int64_t q0, bool all, int buf) {
      const TokenIds* sIds = qb.ids_of(buf);
      const float *sLse = qb.scalars_of(0, buf), *sDelta = qb.scalars_of(1, buf);
      // Transposed scores: rows are this warp's keys, columns the tile's queries.
      float st[BN / 8][4] = {}, dpt[BN / 8][4] = {};
      WarpMM<SE>::template nt<BN, D, S>(st, sK + warp * 16 * S, qb.a_of(buf));
      WarpMM<SE>::template nt<BN, D, S>(dpt, sV + warp * 16 * S, qb.b_of(buf));
#pragma unroll
      for (int n = 0; n < BN / 8; n++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
          const int c = frag_col(n, r);
          const bool vis = all || (q0 + c < m.T && attn::ids_visible(m.causal, sIds[c], sKid[warp * 16 + frag_row(r)]));
          const float pv = vis ? expf(st[n][r] * p.scale - sLse[c]) : 0.f;
          st[n][r] = pv;
          dpt[n][r] = pv * (dpt[n][r] - sDelta[c]);  // dS^T
        }
      WarpMM<SE>::template nn<D, BN, S>(dv, st, qb.b_of(buf));
      WarpMM<SE>::template nn<D, BN, S>(dk, dpt, qb.a_of(buf));
    });
  }
  store_rows<T, D>(static_cast<T*>(p.dk), dk, wrow, m.T, p.Hkv, g, p.scale);
  store_rows<T, D>(static_cast<T*>(p.dv), dv, wrow, m.T, p.Hkv, g, 1.f);
}

// ---- host side ----

template <typename T, int D>
constexpr size_t tile_bytes(int rows) {
  return size_t(rows) * Cfg<T, D>::kStride * sizeof(typename Cfg<T, D>::SE);
}

template <typename K>
void launch(K kernel, dim3 grid, size_t smem, cudaStream_t stream, const Params& p) {
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) throw Error("ERR_CUDA", std::string("attention: shared memory: ") + cudaGetErrorString(e));
  }
  kernel<<<grid, kThreads, smem, stream>>>(p);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

Params make_params(const Stream& s, const AttentionArgs& a) {
  Params p{};
  p.q = a.q.data;
  p.k = a.k.data;
  p.v = a.v.data;
  p.mask = mask_spec(a);
  p.Hq = int(a.hq);
  p.Hkv = int(a.hkv);
  p.scale = float(a.scale);
  p.map = build_tile_map(s, p.mask);  // freed by the caller once its kernels are queued
  return p;
}

// The shapes these kernels take: f32 or bf16, head dim 64 or 128, heads within a grid dimension.
bool takes(const AttentionArgs& a) {
  return (a.q.dtype == DType::F32 || a.q.dtype == DType::BF16) && (a.dim == 64 || a.dim == 128) && a.hq <= 65535 && a.tokens > 0 &&
         a.tokens <= INT32_MAX;
}

template <typename F>
void dispatch(const AttentionArgs& a, F&& f) {
  dispatch_gpu_float(a.q.dtype, "attention", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (a.dim == 64) f(static_cast<T*>(nullptr), std::integral_constant<int, 64>{});
    else f(static_cast<T*>(nullptr), std::integral_constant<int, 128>{});
  });
}

}  // namespace

bool attention_enabled(int device) {
  static const bool on = env_flag("MIXT_MMA_ATTENTION");
  return on && compute_capability(device) >= 80;
}

bool try_attention_forward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& lse) {
  if (!takes(a)) return false;
  Params p = make_params(s, a);
  p.out = out.data;
  p.lse = lse.ptr<float>();
  p.vec16 = aligned16(p.q) && aligned16(p.k) && aligned16(p.v);
  const dim3 grid(unsigned((a.tokens + kBlockM - 1) / kBlockM), unsigned(p.Hq));
  dispatch(a, [&](auto* tag, auto dim) {
    using T = std::remove_pointer_t<decltype(tag)>;
    constexpr int D = decltype(dim)::value, BN = Cfg<T, D>::kFwdN;
    const size_t smem = tile_bytes<T, D>(kBlockM) + KeyBuffers<T, D, BN>::bytes();
    launch(forward_kernel<T, D, BN>, grid, smem, stream_of(s), p);
  });
  cudaFreeAsync(const_cast<attn::IdSummary*>(p.map.granules), stream_of(s));
  return true;
}

bool try_attention_backward(const Stream& s, const AttentionArgs& a, const TensorView& out, const TensorView& dout, const TensorView& lse,
                            const TensorView& dq, const TensorView& dk, const TensorView& dv) {
  if (!takes(a)) return false;
  cudaStream_t st = stream_of(s);
  float* delta = stream_workspace<float>(size_t(a.tokens * a.hq), st, "attention backward");
  Params p = make_params(s, a);
  p.o = out.data;
  p.dout = dout.data;
  p.lse_in = lse.ptr<float>();
  p.delta = delta;
  p.dq = dq.data;
  p.dk = dk.data;
  p.dv = dv.data;
  p.vec16 = aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && aligned16(p.dout);
  const unsigned blocks = unsigned((a.tokens + kBlockM - 1) / kBlockM);
  dispatch(a, [&](auto* tag, auto dim) {
    using T = std::remove_pointer_t<decltype(tag)>;
    constexpr int D = decltype(dim)::value, BN = Cfg<T, D>::kBwdN;
    delta_kernel<T><<<grid_for(a.tokens * p.Hq * 32), 256, 0, st>>>(static_cast<const T*>(p.o), static_cast<const T*>(p.dout), p.delta, a.tokens,
                                                                     p.Hq, D);
    const size_t dq_smem = tile_bytes<T, D>(2 * kBlockM) + KeyBuffers<T, D, BN>::bytes();
    launch(dq_kernel<T, D, BN>, dim3(blocks, unsigned(p.Hq)), dq_smem, st, p);
    const size_t dkdv_smem = tile_bytes<T, D>(2 * kBlockM) + QueryBuffers<T, D, BN>::bytes() + kBlockM * sizeof(TokenIds) + sizeof(IdSummary);
    launch(dkdv_kernel<T, D, BN>, dim3(blocks, unsigned(p.Hkv)), dkdv_smem, st, p);
  });
  cudaFreeAsync(delta, st);
  cudaFreeAsync(const_cast<attn::IdSummary*>(p.map.granules), st);
  return true;
}

}  // namespace mixt::cuda::mma
