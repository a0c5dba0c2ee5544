// Mask summaries, once per attention call, for the tensor-core kernels (see attention_tiles.h).
#include "attention_tiles.h"
#include "common.cuh"

namespace mixt::cuda {
namespace {

__global__ void granule_kernel(attn::MaskSpec m, attn::IdSummary* out, int64_t granules) {
  MIXT_GRID_STRIDE(g, granules) out[g] = m.granule(g);
}

// Unsorted document ids would make the document ranges wrong: report them as bad data.
__global__ void doc_order_kernel(const int32_t* doc, int64_t T_, int* flag, int tag) {
  MIXT_GRID_STRIDE(i, T_ - 1) {
    if (doc[i + 1] < doc[i]) {
      report_fault(flag, tag, kFaultBadOffsets);
      return;
    }
  }
}

}  // namespace

attn::MaskSpec mask_spec(const AttentionArgs& a) {
  attn::MaskSpec m;
  m.doc = a.doc_ids.ptr<int32_t>();
  m.pos = a.positions.ptr<int32_t>();
  m.span = a.span_ids.ptr<int32_t>();
  m.T = a.tokens;
  m.causal = a.causal;
  return m;
}

attn::TileMap build_tile_map(const Stream& s, const attn::MaskSpec& m) {
  cudaStream_t st = stream_of(s);
  const int64_t granules = (m.T + attn::kGranule - 1) / attn::kGranule;
  attn::IdSummary* g = stream_workspace<attn::IdSummary>(size_t(granules), st, "attention mask summaries");
  granule_kernel<<<grid_for(granules), 256, 0, st>>>(m, g, granules);
  if (m.doc && m.T > 1) doc_order_kernel<<<grid_for(m.T - 1), 256, 0, st>>>(m.doc, m.T, s.error_flag, s.op_tag);
  return attn::TileMap{g, m.T, m.causal};
}

}  // namespace mixt::cuda
