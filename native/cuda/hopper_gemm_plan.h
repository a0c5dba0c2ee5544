// The plan of the sm_90a grouped GEMM (hopper_gemm.cu) as host-compilable constexpr code: tile shape,
// where each stage's operands live in shared memory, which TMA box feeds which part of a stage, the
// descriptor of each wgmma's operands, which output element each accumulator register is, and the
// order in which the persistent CTAs walk the tiles of all groups. The kernel calls exactly these
// functions; native/emu/hopper_gemm_emu.cpp runs them against the host model of TMA and wgmma.
#pragma once

#include <cstdint>

#include "wgmma_layout.h"

namespace mixt::wgmma::gemm {

// How an operand lies in global memory (and so in shared memory): K-major (contiguous along the
// reduction) or MN-major (contiguous along the rows of A / columns of B).
enum class Major : int { K = 0, MN = 1 };

// A TMA map: 3 dims (innermost first), strides of dims 1 and 2 in elements, a box0 x box1 x 1 box.
struct MapShape {
  int64_t dim[3], stride1, stride2;
  int box0, box1;
};

template <int BN_>
struct Plan {
  static constexpr int BM = 128, BN = BN_, BK = 64, STAGES = 4;
  static constexpr int CONSUMERS = 2, THREADS = 128 * (1 + CONSUMERS);  // a producer and two consumer warpgroups
  static constexpr int WG_ROWS = BM / CONSUMERS;                       // 64: one m64 wgmma a consumer
  static constexpr uint32_t A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
  // shared memory: [A stages][B stages][full barriers][empty barriers], 1024-byte aligned operand tiles
  MIXT_HD static constexpr uint32_t a_stage(int s) { return uint32_t(s) * A_BYTES; }
  MIXT_HD static constexpr uint32_t b_stage(int s) { return STAGES * A_BYTES + uint32_t(s) * B_BYTES; }
  MIXT_HD static constexpr uint32_t full_bar(int s) { return STAGES * STAGE_BYTES + uint32_t(s) * 8; }
  MIXT_HD static constexpr uint32_t empty_bar(int s) { return STAGES * STAGE_BYTES + (STAGES + uint32_t(s)) * 8; }
  static constexpr uint32_t SMEM_BYTES = STAGES * STAGE_BYTES + 2 * STAGES * 8;
  static_assert(A_BYTES % kSwizzleAtomBytes == 0 && B_BYTES % kSwizzleAtomBytes == 0, "operand tiles keep 1024-byte alignment");
  static_assert(SMEM_BYTES + 1024 <= 227 * 1024, "a stage ring that fits an sm_90 CTA");
  static_assert(BN % 64 == 0 && BN <= 256 && BK == kSwizzleRowElems, "wgmma N and the swizzle row");

  // TMA boxes of one stage. K-major: one box of [rows][64 k] (box0 = 64 along k). MN-major: rows / 64
  // boxes of [BK k][64 mn] (box0 = 64 along mn), each BK x 128 bytes.
  MIXT_HD static constexpr int boxes(Major m, int rows) { return m == Major::K ? 1 : rows / kSwizzleRowElems; }
  MIXT_HD static constexpr uint32_t box_offset(Major m, int box) { return m == Major::K ? 0 : uint32_t(box) * mnmajor_box_bytes(BK); }
  // Coordinates (innermost first) of box `box` of a stage whose operand tile starts at `mn0` along its
  // M (A) or N (B) dimension and `k0` along the reduction. Maps are 3-D: K-major [group][mn][k],
  // MN-major [group][k][mn], so a box past a group's k or mn extent reads zeros, not the next group.
  MIXT_HD static constexpr void box_coords(Major m, int box, int64_t mn0, int64_t k0, int64_t& c0, int64_t& c1) {
    c0 = m == Major::K ? k0 : mn0 + int64_t(box) * kSwizzleRowElems;
    c1 = m == Major::K ? mn0 : k0;
  }
  // A TMA box as a map describes it: box0 innermost (always one 128-byte swizzle row), box1 rows.
  MIXT_HD static constexpr int box_rows(Major m, int tile_rows) { return m == Major::K ? tile_rows : BK; }

  // The TMA maps (3-D, innermost first, strides in elements): A of row-grouped problems [rows][k],
  // of depth-grouped ones (dW, MN-major) [depth][m]; B K-major [group][n][k], MN-major [group][k][n]
  // (depth-grouped: [depth][n], one group). Boxes: one 64-element swizzle row by box_rows rows.
  static constexpr MapShape a_map(bool depth_grouped, int64_t rows, int64_t m, int64_t k) {
    return depth_grouped ? MapShape{{m, rows, 1}, m, 0, kSwizzleRowElems, box_rows(Major::MN, BM)}
                         : MapShape{{k, rows, 1}, k, 0, kSwizzleRowElems, box_rows(Major::K, BM)};
  }
  static constexpr MapShape b_map(bool depth_grouped, Major b, int groups, int64_t depth, int64_t n, int64_t k, int64_t group_stride) {
    return depth_grouped ? MapShape{{n, depth, 1}, n, 0, kSwizzleRowElems, box_rows(Major::MN, BN)}
           : b == Major::K ? MapShape{{k, n, groups}, k, group_stride, kSwizzleRowElems, box_rows(Major::K, BN)}
                           : MapShape{{n, k, groups}, n, group_stride, kSwizzleRowElems, box_rows(Major::MN, BN)};
  }

  // Descriptors of consumer `cw`'s k16 step kk of stage s (addresses relative to the aligned base).
  MIXT_HD static constexpr uint64_t a_desc(Major m, uint32_t base, int s, int cw, int kk) {
    const uint32_t tile = base + a_stage(s);
    // MN-major A: the consumer's 64 rows are box cw, exactly one 64-wide MN block
    return m == Major::K ? desc_kmajor_sw128(kmajor_slice_addr(tile, cw * WG_ROWS, kk))
                         : desc_mnmajor_sw128(mnmajor_slice_addr(tile + box_offset(m, cw), kk), BK);
  }
  MIXT_HD static constexpr uint64_t b_desc(Major m, uint32_t base, int s, int kk) {
    const uint32_t tile = base + b_stage(s);
    return m == Major::K ? desc_kmajor_sw128(kmajor_slice_addr(tile, 0, kk)) : desc_mnmajor_sw128(mnmajor_slice_addr(tile, kk), BK);
  }
  // Output element of register i of thread t (of 128) of consumer cw, relative to the tile origin.
  MIXT_HD static constexpr int out_row(int cw, int t, int i) { return cw * WG_ROWS + acc_row(t, i); }
  MIXT_HD static constexpr int out_col(int t, int i) { return acc_col(t, i); }
};

// Tile width for n output columns: 256 (a 128 x 256 tile: half the B traffic a FLOP of 128 x 128)
// unless it would compute more padding columns than 128 does (n = 1408: 6 x 256 = 1536 vs 11 x 128).
MIXT_HD constexpr int tile_width(int64_t n) { return (n + 255) / 256 * 256 == (n + 127) / 128 * 128 ? 256 : 128; }

// ---- tile scheduler ------------------------------------------------------------------------------
// The tiles of all groups, numbered group after group; inside a group, bands of kBand row tiles are
// walked column by column (the L2-friendly "grouped" order: consecutive CTAs share A rows and B
// columns), the last band holding the rows left. A persistent CTA takes tiles blockIdx.x,
// blockIdx.x + gridDim.x, ...; TileWalker follows it group by group, reading each group's size once.
constexpr int kBand = 8;

// Row tile mt, column tile nt of the local-th tile of a group of m_tiles x n_tiles.
MIXT_HD constexpr void band_order(int64_t local, int64_t m_tiles, int64_t n_tiles, int band, int64_t& mt, int64_t& nt) {
  const int64_t per_band = int64_t(band) * n_tiles;
  const int64_t b = local / per_band, w = local - b * per_band;
  const int64_t left = m_tiles - b * band, h = left < band ? left : band;
  mt = b * band + w % h;
  nt = w / h;
}

// The groups as the scheduler sees them. rows_grouped: groups split the tiled rows (forward, dX:
// offsets give each group's rows); otherwise every group has `m` rows (dW: groups split the reduction,
// offsets give each group's depth; plain matmul: one group).
struct GroupSizes {
  const int32_t* offsets;  // groups + 1 prefix offsets, clamped to [0, total] and made monotone
  int groups;
  int64_t total, m;
  bool rows_grouped;
  MIXT_HD int64_t bound(int g) const {
    if (!offsets) return g == 0 ? 0 : total;
    const int64_t v = offsets[g];
    return v < 0 ? 0 : v > total ? total : v;
  }
  // The group's span [r0, r1) along the grouped dimension.
  MIXT_HD void span(int g, int64_t& r0, int64_t& r1) const {
    r0 = bound(g);
    r1 = bound(g + 1);
    if (r1 < r0) r1 = r0;
  }
};

struct Tile {
  int group;
  int64_t r0, r1;  // the group's span (rows of A and C, or the reduction range for dW)
  int64_t m0, n0;  // tile origin within the group's output
};

template <int BM, int BN>
struct TileWalker {
  int g = 0;
  int64_t before = 0;  // tiles of the groups before g
  // Finds tile t (t never decreases between calls); false past the last tile.
  MIXT_HD bool find(const GroupSizes& s, int64_t n, int64_t t, Tile& out) {
    const int64_t n_tiles = (n + BN - 1) / BN;
    for (; g < s.groups; g++) {
      int64_t r0, r1;
      s.span(g, r0, r1);
      const int64_t rows = s.rows_grouped ? r1 - r0 : s.m;
      const int64_t m_tiles = (rows + BM - 1) / BM, tiles = m_tiles * n_tiles;
      if (t < before + tiles) {
        int64_t mt, nt;
        band_order(t - before, m_tiles, n_tiles, kBand, mt, nt);
        out = {g, r0, r1, mt * BM, nt * BN};
        return true;
      }
      before += tiles;
    }
    return false;
  }
};

// Where a tile's operands start and how deep its reduction is. Row-grouped problems (forward, dX, plain
// matmul): A rows r0 + m0 of a [rows][k] map, B of the tile's group, depth k. Depth-grouped (dW): both
// operands' reduction rows start at the group's r0 and run r1 - r0 deep; the k tile that crosses
// into the next group has its rows past the depth zeroed in shared memory before the wgmma reads it.
struct TileOperands {
  int64_t a_mn0, b_mn0, k0;
  int b_group;
  int64_t depth;
};
MIXT_HD constexpr TileOperands tile_operands(const Tile& t, bool depth_grouped, int64_t k) {
  return depth_grouped ? TileOperands{t.m0, t.n0, t.r0, 0, t.r1 - t.r0} : TileOperands{t.r0 + t.m0, t.n0, 0, t.group, k};
}
// The tiles of one persistent CTA (first, first + stride, ...), each with its operands and k tiles:
// what the producer and the consumers of the kernel (and the emulator) walk in step.
template <int BM, int BN, int BK>
struct CtaTiles {
  TileWalker<BM, BN> walk;
  Tile tile{};
  TileOperands ops{};
  int ktiles = 0;
  int64_t t;
  MIXT_HD explicit CtaTiles(int64_t first) : t(first) {}
  MIXT_HD bool next(const GroupSizes& s, int64_t n, int64_t k, bool depth_grouped, int64_t stride) {
    if (!walk.find(s, n, t, tile)) return false;
    t += stride;
    ops = tile_operands(tile, depth_grouped, k);
    ktiles = int((ops.depth + BK - 1) / BK);
    return true;
  }
};

// Rows of the tile's output inside its group (columns: n - n0), and the output element's offset.
MIXT_HD constexpr int64_t tile_rows_left(const Tile& t, bool depth_grouped, int64_t m) { return (depth_grouped ? m : t.r1 - t.r0) - t.m0; }
MIXT_HD constexpr int64_t out_offset(const Tile& t, bool depth_grouped, int row, int col, int64_t ldc, int64_t c_group_stride) {
  return depth_grouped ? t.group * c_group_stride + (t.m0 + row) * ldc + t.n0 + col : (t.r0 + t.m0 + row) * ldc + t.n0 + col;
}
// Byte range of k row `kr` (0 <= kr < BK) inside one box of an MN-major stage: a whole 128-byte row,
// so zeroing it is the same before and after the swizzle (which permutes chunks within the row).
MIXT_HD constexpr uint32_t mnmajor_row_offset(int kr) { return uint32_t(kr) * kSwizzleRowBytes; }

}  // namespace mixt::wgmma::gemm
