// A host model of the sm_90a warpgroup operations the wgmma kernels use, written from the PTX ISA
// (not from the kernels), so that a test can run a kernel's own index math (native/cuda/wgmma_layout.h
// and the kernel's plan headers) against it on a machine without a GPU:
//   - shared memory as a byte array whose offsets stand for shared-window addresses;
//   - a 3-D TMA load (cp.async.bulk.tensor.3d) of a bf16 box with 128-byte swizzle and zero fill out
//     of the tensor's bounds;
//   - the shared-memory matrix descriptor (start, leading / stride byte offsets, base offset, layout)
//     and how wgmma reads an operand element through it, K-major or MN-major (transposed);
//   - wgmma.mma_async m64nNk16 .f32.bf16.bf16 into the 128 threads' accumulator registers.
// Scope: bf16 operands, fp32 accumulators, 128-byte swizzle (the only layout the kernels use); anything
// else throws, so a kernel change the model does not cover fails loudly instead of passing.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace mixt::emu {

inline float bf16_to_float(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round to nearest even, as __float2bfloat16 does (NaN kept a quiet NaN).
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return uint16_t((u >> 16) | 0x40);
  u += 0x7FFF + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

// The CTA's shared memory: offset 0 stands for a 1024-byte-aligned shared-window address.
struct SharedMemory {
  std::vector<uint8_t> bytes;
  explicit SharedMemory(size_t n) : bytes(n, 0xCD) {}  // garbage, not zeros: an unwritten read shows
  uint16_t load_u16(uint32_t addr) const {
    if (addr % 2 || addr + 2 > bytes.size()) throw std::out_of_range("emu: shared load at " + std::to_string(addr));
    uint16_t v;
    std::memcpy(&v, &bytes[addr], 2);
    return v;
  }
  void store_u16(uint32_t addr, uint16_t v) {
    if (addr % 2 || addr + 2 > bytes.size()) throw std::out_of_range("emu: shared store at " + std::to_string(addr));
    std::memcpy(&bytes[addr], &v, 2);
  }
};

// The 128-byte swizzle is a function of the address: bits [4, 7) (the 16-byte chunk within a 128-byte
// row) are XORed with bits [7, 10) (the row within a 1024-byte atom).
inline uint32_t swizzle128(uint32_t addr) { return addr ^ (((addr >> 7) & 7) << 4); }

// A bf16 tensor in global memory as a 3-D TMA map sees it: dims[0] innermost (elements, contiguous),
// strides of dims 1 and 2 in elements; a box is box0 x box1 x 1 elements.
struct TensorMap3d {
  const uint16_t* base;
  int64_t dim[3], stride1, stride2;
  int box0, box1;
};

// cp.async.bulk.tensor.3d with CU_TENSOR_MAP_SWIZZLE_128B: box element (i, j) (i innermost) of the box at
// (c0, c1, c2) lands at swizzle128(dst + j * 128 + 2 i); elements outside the tensor are written as zeros.
inline void tma_load_3d_sw128(SharedMemory& sm, uint32_t dst, const TensorMap3d& map, int64_t c0, int64_t c1, int64_t c2) {
  if (map.box0 * 2 != 128) throw std::invalid_argument("emu: 128B swizzle needs a 128-byte inner box");
  if (map.box1 < 1 || map.box1 > 256) throw std::invalid_argument("emu: a TMA box dimension is 1..256");
  if (dst % 1024) throw std::invalid_argument("emu: a 128B-swizzled TMA destination must be 1024-byte aligned");
  for (int j = 0; j < map.box1; j++)
    for (int i = 0; i < map.box0; i++) {
      const int64_t x = c0 + i, y = c1 + j;
      const bool in = x >= 0 && x < map.dim[0] && y >= 0 && y < map.dim[1] && c2 >= 0 && c2 < map.dim[2];
      sm.store_u16(swizzle128(dst + uint32_t(j) * 128 + uint32_t(i) * 2), in ? map.base[c2 * map.stride2 + y * map.stride1 + x] : 0);
    }
}

struct SmemDesc {
  uint32_t start, lead, stride, base_offset, layout;  // byte values
};
inline SmemDesc decode_desc(uint64_t d) {
  return {uint32_t(d & 0x3FFF) << 4, uint32_t((d >> 16) & 0x3FFF) << 4, uint32_t((d >> 32) & 0x3FFF) << 4, uint32_t((d >> 49) & 7),
          uint32_t(d >> 62)};
}

// The shared address wgmma reads for operand element (mn, k), 0 <= k < 16, of a 128B-swizzled operand
// (canonical layouts of the PTX ISA, in 16-byte units T = 8 bf16):
//   K-major:  ((8, m), (T, 2)) : ((8T, SBO), (1, T))       rows of 128 bytes, 8-row atoms SBO apart
//   MN-major: ((T, 8, m), (8, k)) : ((1, T, LBO), (8T, SBO)) 64 mn per 128-byte row, 64-mn blocks LBO
//             apart, 8-k atoms SBO apart
inline uint32_t operand_addr(const SmemDesc& d, bool mn_major, int mn, int k) {
  if (d.layout != 1) throw std::invalid_argument("emu: only the 128-byte swizzle layout is modelled");
  if (d.base_offset != 0) throw std::invalid_argument("emu: a non-zero base offset is not modelled");
  uint32_t a;
  if (!mn_major)
    a = d.start + uint32_t(mn / 8) * d.stride + uint32_t(mn % 8) * 128 + uint32_t(k) * 2;
  else
    a = d.start + uint32_t(mn / 64) * d.lead + uint32_t(mn % 64) * 2 + uint32_t(k / 8) * d.stride + uint32_t(k % 8) * 128;
  return swizzle128(a);
}

// The 128 threads' accumulators of a warpgroup: reg[t][i], N / 2 registers a thread.
struct Accumulators {
  int n;
  std::vector<std::vector<float>> reg;
  explicit Accumulators(int n_) : n(n_), reg(128, std::vector<float>(size_t(n_ / 2), 0.f)) {}
};

// Register i of thread t of an m64nN fp32 fragment: the warp owns 16 rows; within them, N / 8 blocks
// of the mma.sync m16n8 C fragment: c0, c1 at (lane / 4, 2 (lane % 4) + {0, 1}), c2, c3 8 rows below.
inline void fragment_position(int t, int i, int& row, int& col) {
  const int warp = t / 32, lane = t % 32, block = i / 4, c = i % 4;
  row = warp * 16 + lane / 4 + (c >= 2 ? 8 : 0);
  col = block * 8 + (lane % 4) * 2 + (c & 1);
}

// wgmma.mma_async.sync.aligned.m64nNk16.f32.bf16.bf16 d, desc_a, desc_b, scale_d, 1, 1, tnsp_a, tnsp_b:
// D[m][n] = (scale_d ? D[m][n] : 0) + sum_k A[m][k] B[k][n], A 64 x 16 (K-major unless tnsp_a),
// B addressed as [n][k] (K-major unless tnsp_b). Products summed in fp32 in k order.
inline void wgmma_m64nNk16(Accumulators& acc, const SharedMemory& sm, uint64_t desc_a, uint64_t desc_b, bool scale_d, bool tnsp_a,
                           bool tnsp_b) {
  const int n = acc.n;
  if (n < 8 || n > 256 || n % 8) throw std::invalid_argument("emu: wgmma N must be a multiple of 8 in [8, 256]");
  const SmemDesc da = decode_desc(desc_a), db = decode_desc(desc_b);
  std::vector<float> a(64 * 16), b(size_t(n) * 16);
  for (int m = 0; m < 64; m++)
    for (int k = 0; k < 16; k++) a[m * 16 + k] = bf16_to_float(sm.load_u16(operand_addr(da, tnsp_a, m, k)));
  for (int j = 0; j < n; j++)
    for (int k = 0; k < 16; k++) b[j * 16 + k] = bf16_to_float(sm.load_u16(operand_addr(db, tnsp_b, j, k)));
  for (int t = 0; t < 128; t++)
    for (int i = 0; i < n / 2; i++) {
      int row, col;
      fragment_position(t, i, row, col);
      float s = scale_d ? acc.reg[t][i] : 0.f;
      for (int k = 0; k < 16; k++) s += a[row * 16 + k] * b[col * 16 + k];
      acc.reg[t][i] = s;
    }
}

}  // namespace mixt::emu
