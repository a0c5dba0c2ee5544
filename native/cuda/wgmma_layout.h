// The index math of the sm_90a wgmma kernels, as plain constexpr functions that compile for the host
// too: how a shared-memory matrix descriptor is encoded, where a k16 / 64-row slice of a 128-byte
// swizzled TMA tile starts, and which (row, column) of the warpgroup's 64 x N tile each fp32
// accumulator register of each thread holds. The kernels call these; the host emulator
// (native/emu/wgmma_emu.h, a model of the hardware written from the PTX ISA) checks them, so a test
// exercises the kernel's own math, not a copy of it.
#pragma once

#include <cstdint>

#ifndef MIXT_HD  // as in kernels/common.h
#if defined(__CUDACC__)
#define MIXT_HD __host__ __device__ __forceinline__
#else
#define MIXT_HD inline
#endif
#endif

namespace mixt::wgmma {

// 128-byte swizzle: 64 bf16 make one 128-byte row of a swizzle atom; 8 rows (1024 bytes) make the atom.
constexpr int kSwizzleRowBytes = 128;
constexpr int kSwizzleAtomBytes = 1024;
constexpr int kSwizzleRowElems = kSwizzleRowBytes / 2;  // bf16

// Descriptor layout types (bits 62-63).
enum class SmemLayout : uint32_t { Interleave = 0, Swizzle128B = 1, Swizzle64B = 2, Swizzle32B = 3 };

// A wgmma shared-memory matrix descriptor: start address, leading and stride byte offsets (all >> 4,
// 14 bits each), base offset 0 (tiles are 1024-byte aligned), layout type.
MIXT_HD constexpr uint64_t make_smem_desc(uint32_t addr, uint32_t lead_bytes, uint32_t stride_bytes, SmemLayout layout) {
  return uint64_t((addr & 0x3FFFF) >> 4) | uint64_t((lead_bytes >> 4) & 0x3FFF) << 16 |
         uint64_t((stride_bytes >> 4) & 0x3FFF) << 32 | uint64_t(uint32_t(layout)) << 62;
}

// K-major operand in a 128B-swizzled tile of [rows][64] bf16 (a TMA box of 64 x rows): rows are 128
// bytes, 8-row atoms 1024 bytes apart (stride offset); the leading offset is unused (encoded as 1).
MIXT_HD constexpr uint64_t desc_kmajor_sw128(uint32_t addr) {
  return make_smem_desc(addr, 16, kSwizzleAtomBytes, SmemLayout::Swizzle128B);
}
// Start of the 16-deep k slice `kk` of rows [row0, ...) of a K-major tile at `tile`: a k16 step is 32
// bytes further inside the swizzled 128-byte row (the hardware swizzles the final address), a row
// step 128 bytes. row0 must be a multiple of 8.
MIXT_HD constexpr uint32_t kmajor_slice_addr(uint32_t tile, int row0, int kk) {
  return tile + uint32_t(row0) * kSwizzleRowBytes + uint32_t(kk) * 32;
}

// MN-major operand: the tile is `mn_boxes` TMA boxes of [k rows][64 mn] bf16, each box k_rows x 128
// bytes. Within a box, 8 k rows form an atom (stride offset 1024 bytes); the next 64 mn are the next
// box (leading offset). A k16 step is 16 rows = 2048 bytes further.
MIXT_HD constexpr uint32_t mnmajor_box_bytes(int k_rows) { return uint32_t(k_rows) * kSwizzleRowBytes; }
MIXT_HD constexpr uint64_t desc_mnmajor_sw128(uint32_t addr, int k_rows) {
  return make_smem_desc(addr, mnmajor_box_bytes(k_rows), kSwizzleAtomBytes, SmemLayout::Swizzle128B);
}
MIXT_HD constexpr uint32_t mnmajor_slice_addr(uint32_t tile, int kk) { return tile + uint32_t(kk) * 16 * kSwizzleRowBytes; }

// The fp32 accumulator fragment of wgmma m64nNk16: thread t of the warpgroup holds N / 2 registers;
// register i is row 16 (t / 32) + (t % 32) / 4 + 8 ((i / 2) % 2), column 8 (i / 4) + 2 (t % 4) + i % 2.
MIXT_HD constexpr int acc_row(int thread, int i) { return 16 * (thread / 32) + (thread % 32) / 4 + 8 * ((i / 2) % 2); }
MIXT_HD constexpr int acc_col(int thread, int i) { return 8 * (i / 4) + 2 * (thread % 4) + i % 2; }

// A setmaxnreg split of a warp-specialised CTA. setmaxnreg.inc blocks until the registers it asks for
// are free in the SM's pool, so the increase must be paid for by what the decrease freed (the
// attention kernel's first split, 32/240 at 168 per thread, hung on an H100: 128 x 136 = 17,408 freed
// < 256 x 72 = 18,432 taken). Counts are per thread; `launch` is the allocation at launch.
struct RegSplit {
  int producer_threads, producer_regs, consumer_threads, consumer_regs, launch, ctas_per_sm;
};
constexpr int kRegsPerSm = 65536;
MIXT_HD constexpr bool reg_split_ok(RegSplit s) {
  return s.producer_regs % 8 == 0 && s.consumer_regs % 8 == 0 && s.producer_regs >= 24 && s.consumer_regs <= 256 &&
         s.producer_regs <= s.launch && s.consumer_regs >= s.launch &&
         // the increase is paid by the decrease
         s.producer_threads * (s.launch - s.producer_regs) >= s.consumer_threads * (s.consumer_regs - s.launch) &&
         // and every CTA of the SM fits
         s.ctas_per_sm * (s.producer_threads * s.producer_regs + s.consumer_threads * s.consumer_regs) <= kRegsPerSm;
}

}  // namespace mixt::wgmma
