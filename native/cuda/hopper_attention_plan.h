// The index math of the Hopper attention forward (hopper_attention.cu) as host/device constexpr
// functions: the shared-memory layout of its Q / K / V tiles, the wgmma operand slices and
// descriptors, and which S accumulator registers become the A fragment of the P V product (P stays
// in registers). The kernel calls these; test/native/attention_tiles.cpp runs them through the host
// model of TMA and wgmma (native/emu/wgmma_emu.h), so the test exercises the kernel's own math.
#pragma once

#include <cstdint>

#include "wgmma_layout.h"  // descriptors and slice addresses shared with the GEMM

namespace mixt::hopper_attn {

constexpr int BQ = 128, BKV = 128, HALF = wgmma::kSwizzleRowElems;  // 64 bf16 = one 128-byte swizzled row
constexpr int kStages = 2;                     // the K/V ring

// Byte offsets in the (1024-aligned) shared block of head dim D: Q as D / 64 boxes of [BQ][64], then
// per stage K as D / 64 boxes of [BKV][64], then V likewise; each box one TMA load, 128B-swizzled.
MIXT_HD constexpr uint32_t q_box(int hh) { return uint32_t(hh) * BQ * HALF * 2; }
template <int D>
MIXT_HD constexpr uint32_t k_box(int stage, int hh) {
  return q_box(D / HALF) + uint32_t(stage * (D / HALF) + hh) * BKV * HALF * 2;
}
template <int D>
MIXT_HD constexpr uint32_t v_box(int stage, int hh) {
  return k_box<D>(kStages, 0) + uint32_t(stage * (D / HALF) + hh) * BKV * HALF * 2;
}
template <int D>
MIXT_HD constexpr uint32_t tiles_bytes() {
  return v_box<D>(kStages, 0);
}

// S = Q K^T: both K-major. Warpgroup cw's 64 query rows, k16 step kk of box hh: rows are 128 bytes,
// a k16 step 32 bytes into the row (the hardware swizzles the final address), 8-row atoms 1024 apart.
MIXT_HD constexpr uint32_t q_slice(int hh, int cw, int kk) { return wgmma::kmajor_slice_addr(q_box(hh), cw * 64, kk); }
template <int D>
MIXT_HD constexpr uint32_t k_slice(int stage, int hh, int kk) {
  return wgmma::kmajor_slice_addr(k_box<D>(stage, hh), 0, kk);
}
MIXT_HD constexpr uint64_t kmajor_desc(uint32_t addr) { return wgmma::desc_kmajor_sw128(addr); }

// O += P V: V is the B operand [keys = k][dims = n], MN-major (dims contiguous in a 128-byte row):
// 8-key atoms 1024 bytes apart (stride), the next 64 dims in the next box (leading: BKV rows of 128
// bytes); k16 step kk starts 16 rows (2048 bytes) further. wgmma reads it transposed (tnspB = 1).
template <int D>
MIXT_HD constexpr uint32_t v_slice(int stage, int kk) {
  return wgmma::mnmajor_slice_addr(v_box<D>(stage, 0), kk);
}
MIXT_HD constexpr uint64_t v_desc(uint32_t addr) { return wgmma::desc_mnmajor_sw128(addr, BKV); }

// P as the A operand in registers: the S accumulator of m64n128 holds, in register i, row
// 16 warp + lane / 4 + 8 ((i / 2) % 2), key 8 (i / 4) + 2 (lane % 4) + i % 2. The A fragment of k16
// step kk has four registers of two bf16 each: r0 (row, keys 2 (lane % 4) + {0, 1}), r1 (row + 8,
// same keys), r2 (row, keys + 8), r3 (row + 8, keys + 8), low half the first key. Register r packs
// accumulators p_reg(kk, r) and p_reg(kk, r) + 1.
MIXT_HD constexpr int p_reg(int kk, int r) { return 8 * kk + 2 * r; }

}  // namespace mixt::hopper_attn
