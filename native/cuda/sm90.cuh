// Hopper (sm_90a) building blocks shared by the wgmma kernels: mbarriers, TMA loads, shared-memory matrix
// descriptors and the wgmma instructions. One copy, so the GEMM and attention kernels cannot drift apart in
// how they encode a descriptor or wait on a barrier. Only compiled for sm_90a (the arch-specific features).
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>

#include <cstdint>

#include "wgmma_layout.h"

namespace mixt::cuda::sm90 {
// A warp-specialised CTA's register split, checked at compile time (see reg_split_ok in
// wgmma_layout.h: the increase must be paid by the decrease, and the CTAs of an SM must fit). Kernels
// change their register count only through this: setmaxnreg written elsewhere fails the static check
// (scripts/cuda-static-check.sh).
template <int ProducerThreads, int ProducerRegs, int ConsumerThreads, int ConsumerRegs, int Launch, int CtasPerSm>
struct RegSplit {
  static_assert(mixt::wgmma::reg_split_ok({ProducerThreads, ProducerRegs, ConsumerThreads, ConsumerRegs, Launch, CtasPerSm}),
                "setmaxnreg split out of budget: producers must free what consumers take, within 64K registers an SM");
  static constexpr int launch = Launch;
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __device__ __forceinline__ static void producer() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(ProducerRegs)); }
  __device__ __forceinline__ static void consumer() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(ConsumerRegs)); }
#endif
};
}  // namespace mixt::cuda::sm90

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
namespace mixt::cuda::sm90 {

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

// mbarriers: `count` arrivals (plus the transaction bytes announced by expect_tx) complete a phase.
__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count));
}
// Makes the initialised barriers visible to the async proxy (TMA) and the other threads of the cluster.
__device__ __forceinline__ void mbar_fence_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::); }
// The barriers by shared-window address (smem_u32) or by pointer.
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes));
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar)); }
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT_%=;\n"
      "}\n" ::"r"(bar),
      "r"(parity));
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, uint32_t bytes) { mbar_expect_tx(smem_u32(bar), bytes); }
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) { mbar_arrive(smem_u32(bar)); }
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) { mbar_wait(smem_u32(bar), parity); }

// A 2-D TMA load of one box at coordinates (c0 innermost, c1), completing `bar`'s transaction bytes.
__device__ __forceinline__ void tma_load_2d(void* dst, const CUtensorMap* map, int c0, int c1, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(smem_u32(dst)),
      "l"(map), "r"(c0), "r"(c1), "r"(smem_u32(bar))
      : "memory");
}

// A 3-D TMA load of one box at coordinates (c0 innermost, c1, c2).
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}
// Orders this thread's generic-proxy shared-memory writes before later async-proxy reads (wgmma, TMA).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// A barrier of `threads` threads (a warpgroup: 128) on named barrier `id` (0 is __syncthreads).
__device__ __forceinline__ void named_barrier(int id, int threads) { asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory"); }

// A shared-memory matrix descriptor: K-major, 128-byte swizzle, 8-row atoms 1024 bytes apart.
__device__ __forceinline__ uint64_t smem_desc_sw128(const void* p) { return mixt::wgmma::desc_kmajor_sw128(smem_u32(p)); }

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N committed wgmma groups are still in flight.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

#define MIXT_SM90_ACC8(i) "+f"(d[i + 0]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])

// One wgmma.mma_async (bf16 in, fp32 accumulators REGS), predicate p = (SCALE != 0); operand numbers as strings.
#define MIXT_WGMMA_PTX(SHAPE, REGS, DA, DB, SCALE, TA, TB)                                                           \
  "{\n.reg .pred p;\nsetp.ne.b32 p, " SCALE ", 0;\nwgmma.mma_async.sync.aligned." SHAPE ".f32.bf16.bf16 {" REGS "}, " DA \
  ", " DB ", p, 1, 1, " TA ", " TB ";\n}\n"
#define MIXT_SM90_REGS64                                                                                       \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
  "%24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, "  \
  "%46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define MIXT_SM90_REGS128                                                                                              \
  MIXT_SM90_REGS64 ", %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, "   \
                   "%83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, "    \
                   "%102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, " \
                   "%119, %120, %121, %122, %123, %124, %125, %126, %127"
#define MIXT_SM90_ACC64(o) MIXT_SM90_ACC8(o), MIXT_SM90_ACC8(o + 8), MIXT_SM90_ACC8(o + 16), MIXT_SM90_ACC8(o + 24), \
  MIXT_SM90_ACC8(o + 32), MIXT_SM90_ACC8(o + 40), MIXT_SM90_ACC8(o + 48), MIXT_SM90_ACC8(o + 56)

// D[64x128] (+)= A[64x16] . B[16x128]; an operand is K-major in shared memory, or MN-major when its
// TransA / TransB is 1 (bf16 only); accumulate when scale_d != 0.
template <int TransA = 0, int TransB = 0>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
  asm volatile(MIXT_WGMMA_PTX("m64n128k16", MIXT_SM90_REGS64, "%64", "%65", "%66", "%67", "%68")
               : MIXT_SM90_ACC64(0)
               : "l"(da), "l"(db), "r"(scale_d), "n"(TransA), "n"(TransB));
}

// D[64x256] (+)= A[64x16] . B[16x256], the same with 128 accumulators a thread.
template <int TransA = 0, int TransB = 0>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t da, uint64_t db, int scale_d) {
  asm volatile(MIXT_WGMMA_PTX("m64n256k16", MIXT_SM90_REGS128, "%128", "%129", "%130", "%131", "%132")
               : MIXT_SM90_ACC64(0), MIXT_SM90_ACC64(64)
               : "l"(da), "l"(db), "r"(scale_d), "n"(TransA), "n"(TransB));
}

// m64nNk16 for the tile widths the kernels use (N = 128 or 256).
template <int N, int TransA, int TransB>
__device__ __forceinline__ void wgmma_m64nNk16(float (&d)[N / 2], uint64_t da, uint64_t db, int scale_d) {
  static_assert(N == 128 || N == 256, "wgmma widths wrapped: 128, 256");
  if constexpr (N == 128) wgmma_m64n128k16<TransA, TransB>(d, da, db, scale_d);
  else wgmma_m64n256k16<TransA, TransB>(d, da, db, scale_d);
}

}  // namespace mixt::cuda::sm90
#endif

// ---- attention additions (hopper_attention.cu) ----
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
namespace mixt::cuda::sm90 {

// D[64xN] (+)= A[64x16] . B[16xN] with A in registers (four b32 of two bf16 per thread, the mma.sync
// m16n8k16 A layout in each warp's 16 rows) and B MN-major in shared memory (read transposed): the
// P V product of attention, P straight from the S accumulators. N/2 accumulators, then a[4], desc, scale.
#define MIXT_SM90_RS_TB(N, DREGS, AREGS, REST) \
  "{\n.reg .pred p;\nsetp.ne.b32 p, " REST ", 0;\nwgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 {" DREGS "}, {" AREGS "}, "
#define MIXT_SM90_R8(a, b, c, d, e, f, g, h) "%" #a ", %" #b ", %" #c ", %" #d ", %" #e ", %" #f ", %" #g ", %" #h
__device__ __forceinline__ void wgmma_m64n64k16_rs_tb(float (&d)[32], const uint32_t (&a)[4], uint64_t db, int scale_d) {
  asm volatile(MIXT_SM90_RS_TB(64,
                               MIXT_SM90_R8(0, 1, 2, 3, 4, 5, 6, 7) ", " MIXT_SM90_R8(8, 9, 10, 11, 12, 13, 14, 15) ", " MIXT_SM90_R8(
                                   16, 17, 18, 19, 20, 21, 22, 23) ", " MIXT_SM90_R8(24, 25, 26, 27, 28, 29, 30, 31),
                               "%32, %33, %34, %35", "%37") "%36, p, 1, 1, 1;\n}\n"
               : MIXT_SM90_ACC8(0), MIXT_SM90_ACC8(8), MIXT_SM90_ACC8(16), MIXT_SM90_ACC8(24)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(scale_d));
}
__device__ __forceinline__ void wgmma_m64n128k16_rs_tb(float (&d)[64], const uint32_t (&a)[4], uint64_t db, int scale_d) {
  asm volatile(MIXT_SM90_RS_TB(128,
                               MIXT_SM90_R8(0, 1, 2, 3, 4, 5, 6, 7) ", " MIXT_SM90_R8(8, 9, 10, 11, 12, 13, 14, 15) ", " MIXT_SM90_R8(
                                   16, 17, 18, 19, 20, 21, 22, 23) ", " MIXT_SM90_R8(24, 25, 26, 27, 28, 29, 30, 31) ", " MIXT_SM90_R8(32, 33, 34, 35, 36, 37, 38, 39) ", " MIXT_SM90_R8(40, 41, 42, 43, 44, 45, 46, 47) ", " MIXT_SM90_R8(48, 49, 50, 51, 52, 53, 54, 55) ", " MIXT_SM90_R8(56, 57, 58, 59, 60, 61, 62, 63),
                               "%64, %65, %66, %67", "%69") "%68, p, 1, 1, 1;\n}\n"
               : MIXT_SM90_ACC8(0), MIXT_SM90_ACC8(8), MIXT_SM90_ACC8(16), MIXT_SM90_ACC8(24), MIXT_SM90_ACC8(32), MIXT_SM90_ACC8(40),
                 MIXT_SM90_ACC8(48), MIXT_SM90_ACC8(56)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(scale_d));
}
#undef MIXT_SM90_R8
#undef MIXT_SM90_RS_TB

}  // namespace mixt::cuda::sm90
#endif
