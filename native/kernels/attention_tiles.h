// The attention mask as tiles see it, shared by the CUDA kernels (mma_attention.cu,
// hopper_attention.cu) and the host test that checks it against the element-wise visibility of
// attention.h (test/native/attention_tiles.cpp). Nothing here touches a tensor: plain pointers and
// integers, so the same functions run on the device and on the host.
//
// Once per call, each granule of kGranule tokens is summarised (min/max of doc, pos and span ids);
// the summary of an aligned tile is the merge of its granules. From a (query tile, key tile) pair of
// summaries, tile_class says: empty (no pair can be visible: the tile is never loaded), full (every
// pair is visible: no per-element mask) or partial (mask in registers). key_range / query_range
// bound a block's loop by its document (doc ids sorted) and, for a plain causal mask, the diagonal.
#pragma once

#include <climits>
#include <cstdint>

#include "common.h"

namespace mixt::attn {

constexpr int kGranule = 16;  // tokens per stored summary; every tile size is a multiple of it

struct TokenIds {
  int32_t doc, pos, span;
};

// attention_visible of attention.h, on ids already read.
MIXT_HD bool ids_visible(bool causal, const TokenIds& q, const TokenIds& k) {
  if (q.doc != k.doc) return false;
  if (!causal || k.pos <= q.pos) return true;
  return q.span >= 0 && q.span == k.span;
}

// What a block of tokens holds. span_min/max cover span ids >= 0 only; unspanned: some token has no
// span. An empty block has doc_min > doc_max.
struct IdSummary {
  int32_t doc_min, doc_max, pos_min, pos_max, span_min, span_max, unspanned;
};

MIXT_HD IdSummary summary_empty() { return IdSummary{INT_MAX, INT_MIN, INT_MAX, INT_MIN, INT_MAX, -1, 0}; }
MIXT_HD int32_t imin(int32_t a, int32_t b) { return a < b ? a : b; }
MIXT_HD int32_t imax(int32_t a, int32_t b) { return a > b ? a : b; }

MIXT_HD void summary_add(IdSummary& s, const TokenIds& t) {
  s.doc_min = imin(s.doc_min, t.doc);
  s.doc_max = imax(s.doc_max, t.doc);
  s.pos_min = imin(s.pos_min, t.pos);
  s.pos_max = imax(s.pos_max, t.pos);
  if (t.span >= 0) {
    s.span_min = imin(s.span_min, t.span);
    s.span_max = imax(s.span_max, t.span);
  } else {
    s.unspanned = 1;
  }
}

MIXT_HD void summary_merge(IdSummary& s, const IdSummary& o) {
  s.doc_min = imin(s.doc_min, o.doc_min);
  s.doc_max = imax(s.doc_max, o.doc_max);
  s.pos_min = imin(s.pos_min, o.pos_min);
  s.pos_max = imax(s.pos_max, o.pos_max);
  s.span_min = imin(s.span_min, o.span_min);
  s.span_max = imax(s.span_max, o.span_max);
  s.unspanned = imax(s.unspanned, o.unspanned);
}

enum TileClass : int { kTileEmpty = 0, kTilePartial = 1, kTileFull = 2 };

// The class of the pair (query block q, key block k), sound for any ids: empty only when no pair is
// visible, full only when every pair is (the caller also needs every key of the tile to exist).
MIXT_HD int tile_class(bool causal, const IdSummary& q, const IdSummary& k) {
  if (q.doc_min > q.doc_max || k.doc_min > k.doc_max) return kTileEmpty;
  if (q.doc_max < k.doc_min || k.doc_max < q.doc_min) return kTileEmpty;
  const bool one_doc = q.doc_min == q.doc_max && k.doc_min == k.doc_max && q.doc_min == k.doc_min;
  if (!causal) return one_doc ? kTileFull : kTilePartial;
  const bool spans_meet = q.span_max >= 0 && k.span_max >= 0 && q.span_min <= k.span_max && k.span_min <= q.span_max;
  if (k.pos_min > q.pos_max && !spans_meet) return kTileEmpty;
  if (!one_doc) return kTilePartial;
  if (k.pos_max <= q.pos_min) return kTileFull;
  // inside one image span (every token of both blocks in the same span): bidirectional
  const bool one_span = !q.unspanned && !k.unspanned && q.span_min == q.span_max && k.span_min == k.span_max && q.span_min == k.span_min;
  return one_span ? kTileFull : kTilePartial;
}

// First token of sorted doc ids with doc >= v / doc > v (the token range of document v).
MIXT_HD int64_t doc_lower_bound(const int32_t* doc, int64_t n, int32_t v) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (doc[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
MIXT_HD int64_t doc_upper_bound(const int32_t* doc, int64_t n, int32_t v) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (doc[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// The mask of one call as kernels read it (plain pointers, so device code can hold it).
struct MaskSpec {
  const int32_t* doc = nullptr;
  const int32_t* pos = nullptr;
  const int32_t* span = nullptr;
  int64_t T = 0;
  bool causal = true;

  // The ids of token i (defaults for absent arrays).
  MIXT_HD TokenIds ids(int64_t i) const { return TokenIds{doc ? doc[i] : 0, pos ? pos[i] : int32_t(i), span ? span[i] : -1}; }
  // Causal by token index with no spans: the visible keys of row i are [docStart(i), i].
  MIXT_HD bool plain_causal() const { return causal && !pos && !span; }
  // The keys [lo, hi) that queries [i0, i1) (non-empty, doc ids sorted) may see.
  MIXT_HD void key_range(int64_t i0, int64_t i1, int64_t* lo, int64_t* hi) const {
    *lo = doc ? doc_lower_bound(doc, T, doc[i0]) : 0;
    *hi = doc ? doc_upper_bound(doc, T, doc[i1 - 1]) : T;
    if (plain_causal() && i1 < *hi) *hi = i1;
  }
  // The queries [lo, hi) that may see keys [j0, j1) (non-empty, doc ids sorted).
  MIXT_HD void query_range(int64_t j0, int64_t j1, int64_t* lo, int64_t* hi) const {
    *lo = doc ? doc_lower_bound(doc, T, doc[j0]) : 0;
    *hi = doc ? doc_upper_bound(doc, T, doc[j1 - 1]) : T;
    if (plain_causal() && j0 > *lo) *lo = j0;
  }
  // The summary of granule g (tokens [g * kGranule, ...) that exist).
  MIXT_HD IdSummary granule(int64_t g) const {
    IdSummary s = summary_empty();
    const int64_t t1 = (g + 1) * kGranule < T ? (g + 1) * kGranule : T;
    for (int64_t t = g * kGranule; t < t1; t++) summary_add(s, ids(t));
    return s;
  }
};

// The per-granule summaries of one call (computed once, by a kernel on the device) and the tile walk
// every kernel and the host emulation share.
struct TileMap {
  const IdSummary* granules = nullptr;  // [ceil(T / kGranule)]
  int64_t T = 0;
  bool causal = true;

  // Summary of tokens [t0, t0 + n) (t0 a multiple of kGranule), the part of it that exists.
  MIXT_HD IdSummary block(int64_t t0, int64_t n) const {
    IdSummary s = summary_empty();
    const int64_t t1 = t0 + n < T ? t0 + n : T;
    for (int64_t g = t0 / kGranule; g * kGranule < t1; g++) summary_merge(s, granules[g]);
    return s;
  }
  // The class of key tile [k0, k0 + BN) for a query block summarised by `qs` (full needs the tile
  // whole: keys past T are masked per element).
  MIXT_HD int key_tile_class(const IdSummary& qs, int64_t k0, int bn) const {
    const int c = tile_class(causal, qs, block(k0, bn));
    return c == kTileFull && k0 + bn > T ? kTilePartial : c;
  }
  // The same for query tile [q0, q0 + BN) against a key block summarised by `ks`.
  MIXT_HD int query_tile_class(const IdSummary& ks, int64_t q0, int bn) const {
    const int c = tile_class(causal, block(q0, bn), ks);
    return c == kTileFull && q0 + bn > T ? kTilePartial : c;
  }
  // The first key tile at or after k0 (a multiple of bn) that is not empty for `qs`, or `end`;
  // its class in *cls.
  MIXT_HD int64_t next_key_tile(const IdSummary& qs, int64_t k0, int64_t end, int bn, int* cls) const {
    for (; k0 < end; k0 += bn)
      if ((*cls = key_tile_class(qs, k0, bn)) != kTileEmpty) return k0;
    return end;
  }
  MIXT_HD int64_t next_query_tile(const IdSummary& ks, int64_t q0, int64_t end, int bn, int* cls) const {
    for (; q0 < end; q0 += bn)
      if ((*cls = query_tile_class(ks, q0, bn)) != kTileEmpty) return q0;
    return end;
  }
};

// The aligned tile loop of a block: [lo rounded down to bn, hi).
MIXT_HD int64_t align_down(int64_t x, int bn) { return x / bn * bn; }

}  // namespace mixt::attn
