// The per-call mask summaries of the tensor-core attention kernels (mma_attention.cu,
// hopper_attention.cu): one kernel summarises every kGranule tokens once per call (and reports
// unsorted document ids as bad data: the loop bounds assume them sorted); the kernels then classify
// any aligned (query block, key tile) pair by merging granules (native/kernels/attention_tiles.h).
#pragma once

#include <cuda_runtime.h>

#include "../kernels/attention.h"
#include "../kernels/attention_tiles.h"

namespace mixt::cuda {

// The mask of `a` as kernels read it.
attn::MaskSpec mask_spec(const AttentionArgs& a);

// The granule summaries of `m` in a stream-ordered workspace: free map.granules with cudaFreeAsync on
// the same stream once the kernels that read it are queued.
attn::TileMap build_tile_map(const Stream& s, const attn::MaskSpec& m);

}  // namespace mixt::cuda
