// Host checks of the attention kernels' tile logic (native/kernels/attention_tiles.h) and a host
// emulation of their arithmetic, against the CPU reference (native/cpu/attention.cpp, in f64).
// Built and run by test/attention_tiles.test.ts:
//   attention_tiles classes <seed> <cases>   tile classes and loop bounds vs element-wise visibility
//   attention_tiles forward <seed> <cases>   online softmax in the kernels' tile order vs the reference
//   attention_tiles backward <seed> <cases>  dQ / dK / dV in the kernels' tile order vs the reference
//   attention_tiles mutant <name> <seed> <cases>  a deliberately wrong classifier: must be caught
//   attention_tiles hopper <seed> <cases>    the Hopper forward's layout, descriptors and P register
//                                            mapping (hopper_attention_plan.h) on the TMA / wgmma model
// Prints one line per failure (at most a few) and a summary; exit status 1 on any failure.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/hopper_attention_plan.h"
#include "emu/wgmma_emu.h"
#include "kernels/attention.h"
#include "kernels/attention_tiles.h"

using namespace mixt;
using attn::IdSummary;
using attn::MaskSpec;
using attn::TileMap;

namespace {

int failures = 0;
void report(const std::string& what) {
  if (++failures <= 8) std::printf("FAIL %s\n", what.c_str());
}

// ---- random masks of every kind ----

enum class PosKind { Index, Compacted, Shuffled };

struct Mask {
  int64_t T = 0;
  bool causal = true;
  std::vector<int32_t> doc, span, pos;  // empty: absent
  std::string name;
  MaskSpec spec() const {
    MaskSpec m;
    m.doc = doc.empty() ? nullptr : doc.data();
    m.span = span.empty() ? nullptr : span.data();
    m.pos = pos.empty() ? nullptr : pos.data();
    m.T = T;
    m.causal = causal;
    return m;
  }
};

Mask random_mask(std::mt19937& rng, int64_t T, int kind) {
  auto coin = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto uni = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  Mask m;
  m.T = T;
  m.causal = kind % 5 != 4;  // one kind in five bidirectional
  // documents: none, one, or sorted runs of random length (some of one token, some long)
  const int docs = kind % 3;
  if (docs > 0) {
    m.doc.resize(T);
    int32_t d = int32_t(uni(0, 3));
    int64_t left = docs == 1 ? T : uni(1, std::max<int64_t>(1, T / 3));
    for (int64_t i = 0; i < T; i++) {
      if (left-- == 0) {
        d += int32_t(uni(1, 2));
        left = coin(0.2) ? 0 : uni(1, std::max<int64_t>(1, T / 2)) - 1;
      }
      m.doc[i] = d;
    }
  }
  // image spans: contiguous runs with ids, text (-1) between; sometimes one span over everything
  if (kind % 2 == 1) {
    m.span.assign(T, -1);
    int32_t id = int32_t(uni(0, 5));
    if (coin(0.15)) {
      std::fill(m.span.begin(), m.span.end(), id);
    } else {
      for (int64_t i = 0; i < T;) {
        const int64_t len = uni(1, std::max<int64_t>(2, T / 3));
        if (coin(0.5))
          for (int64_t j = i; j < std::min(T, i + len); j++) m.span[j] = id;
        id += int32_t(uni(1, 2));
        i += len;
      }
    }
  }
  // positions: token index, MoD-compacted (increasing original positions with gaps), or shuffled
  const PosKind pk = PosKind(kind / 7 % 3);
  if (pk == PosKind::Compacted) {
    m.pos.resize(T);
    int32_t p = int32_t(uni(0, 3));
    for (int64_t i = 0; i < T; i++) {
      if (!m.doc.empty() && i > 0 && m.doc[i] != m.doc[i - 1]) p = int32_t(uni(0, 3));
      m.pos[i] = p;
      p += int32_t(uni(1, 4));
    }
  } else if (pk == PosKind::Shuffled) {
    m.pos.resize(T);
    for (int64_t i = 0; i < T; i++) m.pos[i] = int32_t(uni(0, T));
  }
  m.name = "T=" + std::to_string(T) + " kind=" + std::to_string(kind) + (m.causal ? " causal" : " bidirectional") +
           (m.doc.empty() ? "" : " docs") + (m.span.empty() ? "" : " spans") +
           (pk == PosKind::Index ? "" : pk == PosKind::Compacted ? " compacted-pos" : " shuffled-pos");
  return m;
}

std::vector<IdSummary> granules_of(const MaskSpec& m) {
  std::vector<IdSummary> g(size_t((m.T + attn::kGranule - 1) / attn::kGranule));
  for (size_t i = 0; i < g.size(); i++) g[i] = m.granule(int64_t(i));
  return g;
}

// ---- classes and bounds vs element-wise visibility ----

using Classifier = std::function<int(bool, const IdSummary&, const IdSummary&)>;

Classifier mutant(const std::string& name) {
  if (name == "nospan")  // forgets that an image span sees its future: drops visible pairs
    return [](bool causal, const IdSummary& q, const IdSummary& k) {
      if (causal && q.doc_min <= q.doc_max && k.pos_min > q.pos_max) return int(attn::kTileEmpty);
      return attn::tile_class(causal, q, k);
    };
  if (name == "onedoc")  // calls a one-document tile full even when causal
    return [](bool causal, const IdSummary& q, const IdSummary& k) {
      const int c = attn::tile_class(causal, q, k);
      const bool one = q.doc_min == q.doc_max && k.doc_min == k.doc_max && q.doc_min == k.doc_min;
      return c == attn::kTilePartial && one ? int(attn::kTileFull) : c;
    };
  if (name == "nodiag")  // bounds a causal block's keys by its first query instead of its last
    return nullptr;
  std::fprintf(stderr, "unknown mutant %s\n", name.c_str());
  std::exit(2);
}

struct Counts {
  int64_t empty = 0, full = 0, partial = 0, partial_needed = 0;
};

void check_classes(const Mask& mk, const Classifier& classify, bool diag_mutant, Counts& n) {
  const MaskSpec m = mk.spec();
  const auto g = granules_of(m);
  const TileMap map{g.data(), m.T, m.causal};
  const int64_t T = m.T;
  for (int bq : {16, 64, 128})
    for (int bk : {16, 32, 64, 128})
      for (int64_t q0 = 0; q0 < T; q0 += bq)
        for (int64_t k0 = 0; k0 < T; k0 += bk) {
          const IdSummary qs = map.block(q0, bq), ks = map.block(k0, bk);
          int c = classify(m.causal, qs, ks);
          if (c == attn::kTileFull && (k0 + bk > T)) c = attn::kTilePartial;  // as TileMap::key_tile_class
          int64_t vis = 0, pairs = 0;
          for (int64_t i = q0; i < std::min(T, q0 + bq); i++)
            for (int64_t j = k0; j < std::min(T, k0 + bk); j++) {
              pairs++;
              vis += attention_visible(m.doc, m.span, m.pos, m.causal, i, j);
            }
          const bool whole = k0 + bk <= T;
          const std::string at = mk.name + " q0=" + std::to_string(q0) + "/" + std::to_string(bq) + " k0=" + std::to_string(k0) + "/" +
                                 std::to_string(bk);
          if (c == attn::kTileEmpty && vis > 0) report("empty tile with visible pairs: " + at);
          if (c == attn::kTileFull && vis != pairs) report("full tile with hidden pairs: " + at);
          if (c == attn::kTileEmpty) n.empty++;
          else if (c == attn::kTileFull) n.full++;
          else n.partial++;
          if (c == attn::kTilePartial && whole && (vis == 0 || vis == pairs)) n.partial_needed++;  // sound but not sharp
        }
  // loop bounds: every visible pair of an aligned block lies inside its key range / query range
  for (int b : {64, 128}) {
    for (int64_t i0 = 0; i0 < T; i0 += b) {
      const int64_t i1 = std::min(T, i0 + b);
      int64_t lo, hi;
      m.key_range(i0, i1, &lo, &hi);
      if (diag_mutant && m.plain_causal()) hi = std::min(hi, i0 + 1);
      for (int64_t i = i0; i < i1; i++)
        for (int64_t j = 0; j < T; j++)
          if ((j < lo || j >= hi) && attention_visible(m.doc, m.span, m.pos, m.causal, i, j))
            report("key range misses a visible pair: " + mk.name + " i=" + std::to_string(i) + " j=" + std::to_string(j));
      m.query_range(i0, i1, &lo, &hi);
      for (int64_t j = i0; j < i1; j++)
        for (int64_t i = 0; i < T; i++)
          if ((i < lo || i >= hi) && attention_visible(m.doc, m.span, m.pos, m.causal, i, j))
            report("query range misses a visible pair: " + mk.name + " i=" + std::to_string(i) + " j=" + std::to_string(j));
    }
  }
}

// ---- emulation of the kernels' arithmetic ----

float round_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

struct Problem {
  Mask mask;
  int64_t T, Hq, Hkv, D;
  double scale;
  std::vector<float> q, k, v, dout;  // bf16-representable values
};

Problem random_problem(std::mt19937& rng, int64_t T, int kind, int64_t Hq, int64_t Hkv, int64_t D) {
  Problem p{random_mask(rng, T, kind), T, Hq, Hkv, D, 1.0 / std::sqrt(double(D)), {}, {}, {}, {}};
  std::normal_distribution<float> nd(0.f, 1.f);
  auto fill = [&](std::vector<float>& x, int64_t n, float mul) {
    x.resize(size_t(n));
    for (auto& e : x) e = round_bf16(nd(rng) * mul);
  };
  fill(p.q, T * Hq * D, 1.5f);  // scores of a few units: the softmax is neither flat nor one-hot
  fill(p.k, T * Hkv * D, 1.5f);
  fill(p.v, T * Hkv * D, 1.f);
  fill(p.dout, T * Hq * D, 1.f);
  return p;
}

TensorView view(std::vector<double>& x, std::initializer_list<int64_t> shape) {
  TensorView t;
  t.data = x.data();
  t.dtype = DType::F64;
  t.ndim = int(shape.size());
  int i = 0;
  for (int64_t s : shape) t.shape[i++] = s;
  return t;
}
TensorView view_i32(const std::vector<int32_t>& x, int64_t T) {
  TensorView t;
  if (x.empty()) return t;
  t.data = const_cast<int32_t*>(x.data());
  t.dtype = DType::I32;
  t.ndim = 1;
  t.shape[0] = T;
  return t;
}

struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
};

Reference reference(Problem& p, bool backward) {
  std::vector<double> q(p.q.begin(), p.q.end()), k(p.k.begin(), p.k.end()), v(p.v.begin(), p.v.end()), dout(p.dout.begin(), p.dout.end());
  Reference r;
  r.out.resize(q.size());
  r.lse.resize(size_t(p.Hq * p.T));
  AttentionArgs a;
  a.q = view(q, {p.T, p.Hq, p.D});
  a.k = view(k, {p.T, p.Hkv, p.D});
  a.v = view(v, {p.T, p.Hkv, p.D});
  a.doc_ids = view_i32(p.mask.doc, p.T);
  a.span_ids = view_i32(p.mask.span, p.T);
  a.positions = view_i32(p.mask.pos, p.T);
  a.causal = p.mask.causal;
  a.scale = p.scale;
  a.tokens = p.T;
  a.hq = p.Hq;
  a.hkv = p.Hkv;
  a.dim = p.D;
  Stream cpu;
  cpu::attention_forward(cpu, a, view(r.out, {p.T, p.Hq, p.D}), view(r.lse, {p.Hq, p.T}));
  if (backward) {
    r.dq.resize(q.size());
    r.dk.resize(k.size());
    r.dv.resize(v.size());
    cpu::attention_backward(cpu, a, view(r.out, {p.T, p.Hq, p.D}), view(dout, {p.T, p.Hq, p.D}), view(r.lse, {p.Hq, p.T}),
                            view(r.dq, {p.T, p.Hq, p.D}), view(r.dk, {p.T, p.Hkv, p.D}), view(r.dv, {p.T, p.Hkv, p.D}));
  }
  return r;
}

// How a kernel tiles and rounds: query block rows, key tile width, whether P / dS are rounded to
// bf16 before their products (tensor cores) and whether the softmax runs in base 2 with -FLT_MAX
// for masked scores (hopper_attention.cu) or in base e with -inf (mma_attention.cu).
struct KernelShape {
  const char* name;
  int bq, bn;
  bool bf16, base2;
};

float dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
  for (int64_t c = 0; c < n; c++) s = std::fma(a[c], b[c], s);
  return s;
}

struct Emulated {
  std::vector<float> out, lse;
  int64_t tiles = 0, full_tiles = 0;
};

// One CTA per (query block, head): the key loop is key_range aligned down to the tile, tiles walked
// by TileMap::next_key_tile, full tiles unmasked, online softmax per row in fp32.
Emulated emulate_forward(const Problem& p, const KernelShape& ks) {
  const MaskSpec m = p.mask.spec();
  const auto g = granules_of(m);
  const TileMap map{g.data(), m.T, m.causal};
  const int64_t T = p.T, D = p.D, rep = p.Hq / p.Hkv;
  Emulated e;
  e.out.assign(size_t(T * p.Hq * D), 0.f);
  e.lse.assign(size_t(p.Hq * T), 0.f);
  const float scale = ks.base2 ? float(p.scale * 1.4426950408889634) : float(p.scale);
  const float masked = ks.base2 ? -FLT_MAX : -INFINITY;
  for (int64_t h = 0; h < p.Hq; h++)
    for (int64_t q0 = 0; q0 < T; q0 += ks.bq) {
      const int64_t q1 = std::min(T, q0 + ks.bq), hk = h / rep;
      const IdSummary qs = map.block(q0, ks.bq);
      int64_t lo, hi;
      m.key_range(q0, q1, &lo, &hi);
      std::vector<float> mx(size_t(ks.bq), masked), l(size_t(ks.bq), 0.f), o(size_t(ks.bq * D), 0.f), s(size_t(ks.bn));
      int cls = 0;
      for (int64_t k0 = map.next_key_tile(qs, attn::align_down(lo, ks.bn), hi, ks.bn, &cls); k0 < hi;
           k0 = map.next_key_tile(qs, k0 + ks.bn, hi, ks.bn, &cls)) {
        e.tiles++;
        e.full_tiles += cls == attn::kTileFull;
        for (int64_t i = q0; i < q1; i++) {
          const int64_t r = i - q0;
          float bm = masked;
          for (int c = 0; c < ks.bn; c++) {
            const int64_t j = k0 + c;
            bool vis = j < T;
            if (vis && cls == attn::kTilePartial) vis = attention_visible(m.doc, m.span, m.pos, m.causal, i, j);
            s[size_t(c)] = vis ? dot(&p.q[size_t((i * p.Hq + h) * D)], &p.k[size_t((j * p.Hkv + hk) * D)], D) * scale : masked;
            bm = std::max(bm, s[size_t(c)]);
          }
          const float mnew = std::max(mx[size_t(r)], bm);
          float alpha, base;
          if (ks.base2) {
            alpha = mnew == -FLT_MAX ? 1.f : std::exp2(mx[size_t(r)] - mnew);
            base = mnew;
          } else {
            base = mnew == -INFINITY ? 0.f : mnew;
            alpha = std::exp(mx[size_t(r)] - base);
          }
          float sum = 0.f;
          for (int64_t c = 0; c < D; c++) o[size_t(r * D + c)] *= alpha;
          for (int c = 0; c < ks.bn; c++) {
            float pr;
            if (ks.base2) pr = s[size_t(c)] == -FLT_MAX ? 0.f : std::exp2(s[size_t(c)] - base);
            else pr = std::exp(s[size_t(c)] - base);
            sum += pr;
            if (pr == 0.f) continue;
            const float pa = ks.bf16 ? round_bf16(pr) : pr;  // P enters the PV product as a bf16 operand
            const float* vj = &p.v[size_t(((k0 + c) * p.Hkv + hk) * D)];
            for (int64_t d = 0; d < D; d++) o[size_t(r * D + d)] = std::fma(pa, vj[d], o[size_t(r * D + d)]);
          }
          l[size_t(r)] = l[size_t(r)] * alpha + sum;
          mx[size_t(r)] = mnew;
        }
      }
      for (int64_t i = q0; i < q1; i++) {
        const int64_t r = i - q0;
        const float inv = l[size_t(r)] > 0.f ? 1.f / l[size_t(r)] : 0.f;
        for (int64_t d = 0; d < D; d++) e.out[size_t((i * p.Hq + h) * D + d)] = o[size_t(r * D + d)] * inv;
        const float lse = ks.base2 ? (mx[size_t(r)] + std::log2(l[size_t(r)])) * 0.6931471805599453f : mx[size_t(r)] + std::log(l[size_t(r)]);
        e.lse[size_t(h * T + i)] = l[size_t(r)] > 0.f ? lse : -INFINITY;
      }
    }
  return e;
}

struct EmulatedGrads {
  std::vector<float> dq, dk, dv;
};

// The backward of mma_attention.cu: delta = rowsum(dO * O); dq by query blocks of 64 rows walking
// key tiles in ascending order (each dQ row owned by one CTA and summed in a fixed order: no atomics,
// bit-reproducible); dk/dv by key blocks of 64 walking, for each query head of the GQA group in
// order, the query tiles in ascending order. dS and P enter their products as bf16 operands.
EmulatedGrads emulate_backward(const Problem& p, const Emulated& fwd, int bn, bool bf16) {
  const MaskSpec m = p.mask.spec();
  const auto g = granules_of(m);
  const TileMap map{g.data(), m.T, m.causal};
  const int64_t T = p.T, D = p.D, rep = p.Hq / p.Hkv;
  const int BM = 64;
  const float scale = float(p.scale);
  auto rnd = [&](float x) { return bf16 ? round_bf16(x) : x; };
  std::vector<float> out(fwd.out.size());
  for (size_t i = 0; i < out.size(); i++) out[i] = rnd(fwd.out[i]);  // the forward stored O in the input dtype
  std::vector<float> delta(size_t(p.Hq * T));
  for (int64_t i = 0; i < T; i++)
    for (int64_t h = 0; h < p.Hq; h++) delta[size_t(h * T + i)] = dot(&p.dout[size_t((i * p.Hq + h) * D)], &out[size_t((i * p.Hq + h) * D)], D);
  auto lse_of = [&](int64_t h, int64_t i) {
    const float v = fwd.lse[size_t(h * T + i)];
    return v == -INFINITY ? INFINITY : v;
  };
  auto prob = [&](int64_t i, int64_t h, int64_t j, int cls, float* dp) {
    const int64_t hk = h / rep;
    bool vis = j < T;
    if (vis && cls == attn::kTilePartial) vis = attention_visible(m.doc, m.span, m.pos, m.causal, i, j);
    const float s = dot(&p.q[size_t((i * p.Hq + h) * D)], &p.k[size_t((j * p.Hkv + hk) * D)], D);
    *dp = dot(&p.dout[size_t((i * p.Hq + h) * D)], &p.v[size_t((j * p.Hkv + hk) * D)], D);
    return vis ? std::exp(s * scale - lse_of(h, i)) : 0.f;
  };
  EmulatedGrads gr;
  gr.dq.assign(p.q.size(), 0.f);
  gr.dk.assign(p.k.size(), 0.f);
  gr.dv.assign(p.v.size(), 0.f);
  int cls = 0;
  for (int64_t h = 0; h < p.Hq; h++)
    for (int64_t q0 = 0; q0 < T; q0 += BM) {
      const int64_t q1 = std::min(T, q0 + BM), hk = h / rep;
      const IdSummary qs = map.block(q0, BM);
      int64_t lo, hi;
      m.key_range(q0, q1, &lo, &hi);
      for (int64_t k0 = map.next_key_tile(qs, attn::align_down(lo, bn), hi, bn, &cls); k0 < hi; k0 = map.next_key_tile(qs, k0 + bn, hi, bn, &cls))
        for (int64_t i = q0; i < q1; i++)
          for (int c = 0; c < bn && k0 + c < T; c++) {
            float dp;
            const float pr = prob(i, h, k0 + c, cls, &dp);
            const float ds = rnd(pr * (dp - delta[size_t(h * T + i)]));
            if (ds == 0.f) continue;
            for (int64_t d = 0; d < D; d++)
              gr.dq[size_t((i * p.Hq + h) * D + d)] = std::fma(ds, p.k[size_t(((k0 + c) * p.Hkv + hk) * D + d)], gr.dq[size_t((i * p.Hq + h) * D + d)]);
          }
    }
  for (int64_t hk = 0; hk < p.Hkv; hk++)
    for (int64_t k0 = 0; k0 < T; k0 += BM) {
      const int64_t k1 = std::min(T, k0 + BM);
      const IdSummary kss = map.block(k0, BM);
      int64_t lo, hi;
      m.query_range(k0, k1, &lo, &hi);
      for (int64_t h = hk * rep; h < (hk + 1) * rep; h++)
        for (int64_t q0 = map.next_query_tile(kss, attn::align_down(lo, bn), hi, bn, &cls); q0 < hi;
             q0 = map.next_query_tile(kss, q0 + bn, hi, bn, &cls))
          for (int64_t j = k0; j < k1; j++)
            for (int c = 0; c < bn && q0 + c < T; c++) {
              const int64_t i = q0 + c;
              float dp;
              const float pr = prob(i, h, j, cls, &dp);
              if (pr == 0.f) continue;
              const float pa = rnd(pr), ds = rnd(pr * (dp - delta[size_t(h * T + i)]));
              for (int64_t d = 0; d < D; d++) {
                gr.dv[size_t((j * p.Hkv + hk) * D + d)] = std::fma(pa, p.dout[size_t((i * p.Hq + h) * D + d)], gr.dv[size_t((j * p.Hkv + hk) * D + d)]);
                gr.dk[size_t((j * p.Hkv + hk) * D + d)] = std::fma(ds, p.q[size_t((i * p.Hq + h) * D + d)], gr.dk[size_t((j * p.Hkv + hk) * D + d)]);
              }
            }
    }
  for (auto& x : gr.dq) x *= scale;
  for (auto& x : gr.dk) x *= scale;
  return gr;
}

// Largest |a - b| over the largest |b| (the error in units of the tensor's scale).
double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
  double err = 0, mag = 1e-12;
  for (size_t i = 0; i < b.size(); i++) {
    err = std::max(err, std::fabs(double(a[i]) - b[i]));
    mag = std::max(mag, std::fabs(b[i]));
  }
  return err / mag;
}

double lse_err(const std::vector<float>& a, const std::vector<double>& b, std::string* why) {
  double err = 0;
  for (size_t i = 0; i < b.size(); i++) {
    if (std::isinf(b[i]) || std::isinf(a[i])) {
      if (a[i] != b[i]) *why = "lse " + std::to_string(a[i]) + " vs " + std::to_string(b[i]) + " at " + std::to_string(i);
      continue;
    }
    err = std::max(err, std::fabs(double(a[i]) - b[i]));
  }
  return err;
}

// ---- the Hopper forward's index math on the host model of TMA and wgmma ----

// wgmma with A from registers (the .rs form), written from the PTX ISA: each warp's 16 rows of A hold
// the mma.sync m16n8k16 A fragment, register r of thread t two bf16 (low half first) at row
// 16 (t / 32) + (t % 32) / 4 + 8 (r % 2), columns 2 (t % 4) + 8 (r / 2) + {0, 1}. B as in emu.
void wgmma_rs(emu::Accumulators& acc, const uint32_t (*a)[4], const emu::SharedMemory& sm, uint64_t desc_b, bool tnsp_b) {
  float A[64][16];
  int seen[64][16] = {};
  for (int t = 0; t < 128; t++)
    for (int r = 0; r < 4; r++)
      for (int half = 0; half < 2; half++) {
        const int row = 16 * (t / 32) + (t % 32) / 4 + 8 * (r % 2), col = 2 * (t % 4) + 8 * (r / 2) + half;
        A[row][col] = emu::bf16_to_float(uint16_t(a[t][r] >> (16 * half)));
        seen[row][col]++;
      }
  for (auto& row : seen)
    for (int c : row)
      if (c != 1) throw std::logic_error("A fragment model covers an element twice");
  const emu::SmemDesc db = emu::decode_desc(desc_b);
  for (int t = 0; t < 128; t++)
    for (int i = 0; i < acc.n / 2; i++) {
      int row, col;
      emu::fragment_position(t, i, row, col);
      float s = acc.reg[t][i];
      for (int k = 0; k < 16; k++) s += A[row][k] * emu::bf16_to_float(sm.load_u16(emu::operand_addr(db, tnsp_b, col, k)));
      acc.reg[t][i] = s;
    }
}

uint32_t pack2(float lo, float hi) { return uint32_t(emu::float_to_bf16(lo)) | uint32_t(emu::float_to_bf16(hi)) << 16; }

// One K/V stage as the kernel computes it: S = Q K^T for each consumer warpgroup, then O = P V with
// P = S (rounded to bf16) taken from the S registers through p_reg, against direct products. K/V
// have `rows` valid keys (the rest zero-filled by TMA, as at the end of the sequence).
template <int D>
double check_hopper_stage(std::mt19937& rng, int stage, int rows) {
  namespace ha = hopper_attn;
  std::normal_distribution<float> nd(0.f, 1.f);
  auto tensor = [&](int n_rows) {
    std::vector<uint16_t> x(size_t(n_rows) * D);
    for (auto& e : x) e = emu::float_to_bf16(nd(rng));
    return x;
  };
  const std::vector<uint16_t> q = tensor(ha::BQ), k = tensor(rows), v = tensor(rows);
  emu::SharedMemory sm(ha::tiles_bytes<D>());
  auto load = [&](const std::vector<uint16_t>& x, int n_rows, uint32_t (*box)(int, int), int st) {
    const emu::TensorMap3d map{x.data(), {D, n_rows, 1}, D, int64_t(D) * n_rows, ha::HALF, ha::BKV};
    for (int hh = 0; hh < D / ha::HALF; hh++) emu::tma_load_3d_sw128(sm, box(st, hh), map, hh * ha::HALF, 0, 0);
  };
  load(q, ha::BQ, [](int, int hh) { return ha::q_box(hh); }, 0);
  load(k, rows, [](int st, int hh) { return ha::k_box<D>(st, hh); }, stage);
  load(v, rows, [](int st, int hh) { return ha::v_box<D>(st, hh); }, stage);
  auto at = [&](const std::vector<uint16_t>& x, int r, int c) { return r < int(x.size() / D) ? emu::bf16_to_float(x[size_t(r) * D + c]) : 0.f; };
  double worst = 0;
  for (int cw = 0; cw < 2; cw++) {
    emu::Accumulators s_acc(ha::BKV);
    for (int hh = 0; hh < D / ha::HALF; hh++)
      for (int kk = 0; kk < ha::HALF / 16; kk++)
        emu::wgmma_m64nNk16(s_acc, sm, ha::kmajor_desc(ha::q_slice(hh, cw, kk)), ha::kmajor_desc(ha::k_slice<D>(stage, hh, kk)), hh > 0 || kk > 0,
                            false, false);
    std::vector<float> p(64 * ha::BKV);  // P as the kernel's registers hold it (rounded when packed)
    for (int t = 0; t < 128; t++)
      for (int i = 0; i < ha::BKV / 2; i++) {
        int row, col;
        emu::fragment_position(t, i, row, col);
        double ref = 0;
        for (int c = 0; c < D; c++) ref += double(at(q, cw * 64 + row, c)) * at(k, col, c);
        worst = std::max(worst, std::fabs(ref - s_acc.reg[t][i]) / (1 + std::fabs(ref)));
        p[size_t(row * ha::BKV + col)] = emu::bf16_to_float(emu::float_to_bf16(s_acc.reg[t][i]));
      }
    std::vector<uint32_t[4]> a(128);
    emu::Accumulators o_acc(D);
    for (int kk = 0; kk < ha::BKV / 16; kk++) {
      for (int t = 0; t < 128; t++)
        for (int r = 0; r < 4; r++) a[size_t(t)][r] = pack2(s_acc.reg[t][ha::p_reg(kk, r)], s_acc.reg[t][ha::p_reg(kk, r) + 1]);
      wgmma_rs(o_acc, a.data(), sm, ha::v_desc(ha::v_slice<D>(stage, kk)), true);
    }
    for (int t = 0; t < 128; t++)
      for (int i = 0; i < D / 2; i++) {
        int row, col;
        emu::fragment_position(t, i, row, col);
        double ref = 0;
        for (int key = 0; key < ha::BKV; key++) ref += double(p[size_t(row * ha::BKV + key)]) * at(v, key, col);
        worst = std::max(worst, std::fabs(ref - o_acc.reg[t][i]) / (1 + std::fabs(ref)));
      }
  }
  return worst;
}

const KernelShape kShapes[] = {
    {"mma bf16 D64", 64, 64, true, false},  {"mma bf16 D128", 64, 64, true, false}, {"mma f32 D64", 64, 64, false, false},
    {"mma f32 D128", 64, 32, false, false}, {"hopper D64", 128, 128, true, true},   {"hopper D128", 128, 128, true, true},
};

int64_t shape_dim(const KernelShape& s) { return std::strstr(s.name, "D128") ? 128 : 64; }

const int kGqa[][2] = {{2, 2}, {4, 2}, {4, 1}, {3, 1}};  // Hq, Hkv: ratios 1, 2, 4, 3

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: attention_tiles classes|forward|backward <seed> <cases> | mutant <name> <seed> <cases>\n");
    return 2;
  }
  const std::string mode = argv[1];
  const bool is_mutant = mode == "mutant";
  const int a0 = is_mutant ? 3 : 2;
  if (argc < a0 + 2) return 2;
  std::mt19937 rng(unsigned(std::atoi(argv[a0])));
  const int cases = std::atoi(argv[a0 + 1]);
  auto uni = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };

  if (mode == "classes" || is_mutant) {
    const Classifier real = attn::tile_class;
    const std::string which = is_mutant ? argv[2] : "";
    const Classifier c = is_mutant ? mutant(which) : real;
    const bool diag = which == "nodiag";
    Counts n;
    for (int i = 0; i < cases; i++) check_classes(random_mask(rng, uni(1, 300), i % 42), c ? c : real, diag, n);
    std::printf("classes: %d cases, tiles empty %lld full %lld partial %lld (of them all- or none-visible %lld), failures %d\n", cases,
                (long long)n.empty, (long long)n.full, (long long)n.partial, (long long)n.partial_needed, failures);
    // a checker that never meets an empty or full tile proves nothing
    if (!is_mutant && (n.empty == 0 || n.full == 0 || n.partial == 0)) report("the random masks never produced every class");
    return failures ? 1 : 0;
  }
  if (mode == "forward") {
    double worst_out[6] = {0}, worst_lse[6] = {0};
    int64_t tiles[6] = {0}, full[6] = {0};
    for (int i = 0; i < cases; i++) {
      const int si = i % 6;
      const KernelShape& ks = kShapes[si];
      const int* hh = kGqa[(i / 6) % 4];
      Problem p = random_problem(rng, uni(1, 330), int(uni(0, 41)), hh[0], hh[1], shape_dim(ks));
      const Reference r = reference(p, false);
      const Emulated e = emulate_forward(p, ks);
      tiles[si] += e.tiles;
      full[si] += e.full_tiles;
      std::string why;
      const double eo = rel_err(e.out, r.out), el = lse_err(e.lse, r.lse, &why);
      worst_out[si] = std::max(worst_out[si], eo);
      worst_lse[si] = std::max(worst_lse[si], el);
      // P rounded to bf16 (8 bits) before PV: about 2^-9 of the output's scale; fp32 paths far below
      const double tol_out = ks.bf16 ? 4e-3 : 1e-5, tol_lse = 5e-5;
      if (eo > tol_out || el > tol_lse || !why.empty())
        report(std::string(ks.name) + " Hq/Hkv " + std::to_string(hh[0]) + "/" + std::to_string(hh[1]) + " " + p.mask.name + ": out err " +
             std::to_string(eo) + " lse err " + std::to_string(el) + " " + why);
    }
    for (int s = 0; s < 6; s++)
      std::printf("forward %-14s worst out err %.2e (of max |out|), lse err %.2e, tiles %lld (full %lld)\n", kShapes[s].name, worst_out[s], worst_lse[s],
                  (long long)tiles[s], (long long)full[s]);
    std::printf("forward: %d cases, failures %d\n", cases, failures);
    return failures ? 1 : 0;
  }
  if (mode == "backward") {
    // the mma.sync backward's tile widths: bf16 32 (D128) / 64 (D64); f32 16 (D128) / 32 (D64)
    const struct {
      const char* name;
      int64_t D;
      int bn;
      bool bf16;
    } shapes[] = {{"bf16 D64", 64, 64, true}, {"bf16 D128", 128, 32, true}, {"f32 D64", 64, 32, false}, {"f32 D128", 128, 16, false}};
    double worst[4] = {0};
    for (int i = 0; i < cases; i++) {
      const auto& sh = shapes[i % 4];
      const int* hh = kGqa[(i / 4) % 4];
      Problem p = random_problem(rng, uni(1, 200), int(uni(0, 41)), hh[0], hh[1], sh.D);
      const Reference r = reference(p, true);
      const Emulated e = emulate_forward(p, KernelShape{"fwd", 64, 64, sh.bf16, false});
      const EmulatedGrads g = emulate_backward(p, e, sh.bn, sh.bf16);
      const double err = std::max({rel_err(g.dq, r.dq), rel_err(g.dk, r.dk), rel_err(g.dv, r.dv)});
      worst[i % 4] = std::max(worst[i % 4], err);
      const double tol = sh.bf16 ? 2e-2 : 1e-5;  // bf16: O, P and dS rounded to 8 bits
      if (err > tol)
        report(std::string(sh.name) + " Hq/Hkv " + std::to_string(hh[0]) + "/" + std::to_string(hh[1]) + " " + p.mask.name + ": grad err " +
             std::to_string(err) + " (dq " + std::to_string(rel_err(g.dq, r.dq)) + " dk " + std::to_string(rel_err(g.dk, r.dk)) + " dv " +
             std::to_string(rel_err(g.dv, r.dv)) + ")");
    }
    for (int s = 0; s < 4; s++) std::printf("backward %-9s worst grad err %.2e (of max |grad|)\n", shapes[s].name, worst[s]);
    std::printf("backward: %d cases, failures %d\n", cases, failures);
    return failures ? 1 : 0;
  }
  if (mode == "hopper") {
    double worst = 0;
    for (int i = 0; i < cases; i++) {
      const int stage = i % 2, rows = int(uni(1, hopper_attn::BKV));
      const double e = i % 4 < 2 ? check_hopper_stage<64>(rng, stage, rows) : check_hopper_stage<128>(rng, stage, rows);
      worst = std::max(worst, e);
      if (e > 1e-3) report("hopper D" + std::to_string(i % 4 < 2 ? 64 : 128) + " stage " + std::to_string(stage) + " keys " + std::to_string(rows) +
                           ": S or O off by " + std::to_string(e));
    }
    std::printf("hopper layout: %d cases, worst relative error of S and O %.2e, failures %d\n", cases, worst, failures);
    return failures ? 1 : 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
