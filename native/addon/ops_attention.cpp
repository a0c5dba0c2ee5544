// Entry points: attention, RoPE, segment ids (native/kernels/attention.h).
#include "../kernels/attention.h"
#include "op_args.h"

namespace mixt {
namespace {

// (q, k, v, docIds|null, spanIds|null, positions|null, causal, scale) from argument 0
AttentionArgs attention_args(const Napi::CallbackInfo& info, std::vector<const TensorHandle*>& all) {
  AttentionArgs a;
  TensorHandle &q = TensorHandle::arg(info, 0, "q"), &k = TensorHandle::arg(info, 1, "k"), &v = TensorHandle::arg(info, 2, "v");
  all.insert(all.end(), {&q, &k, &v});
  a.q = q.view();
  a.k = k.view();
  a.v = v.view();
  a.doc_ids = optional_view(info, 3, "docIds", &all);
  a.span_ids = optional_view(info, 4, "spanIds", &all);
  a.positions = optional_view(info, 5, "positions", &all);
  a.causal = bool_arg(info, 6, "causal");
  a.scale = number_arg(info, 7, "scale");
  MIXT_CHECK(a.q.ndim == 3 && a.k.ndim == 3 && a.v.ndim == 3, "attention: q, k, v are [T, H, D]");
  a.tokens = a.q.shape[0];
  a.hq = a.q.shape[1];
  a.hkv = a.k.shape[1];
  a.dim = a.q.shape[2];
  MIXT_CHECK(a.hkv >= 1 && a.hq % a.hkv == 0 && a.k.shape[0] == a.tokens && a.k.shape[2] == a.dim && a.v.numel() == a.k.numel() &&
                 a.k.dtype == a.q.dtype && a.v.dtype == a.q.dtype,
             "attention: shapes do not match");
  want_float("attention", "q", a.q);
  for (const TensorView* t : {&a.doc_ids, &a.span_ids, &a.positions})
    MIXT_CHECK(!t->data || (t->numel() == a.tokens && t->dtype == DType::I32), "attention: ids are i32 [T]");
  return a;
}

// attentionForward(q, k, v, docIds, spanIds, positions, causal, scale, out, lse)
MIXT_ENTRY(attention_forward) {
  std::vector<const TensorHandle*> all;
  AttentionArgs a = attention_args(info, all);
  TensorHandle &out = TensorHandle::arg(info, 8, "out"), &lse = TensorHandle::arg(info, 9, "lse");
  all.insert(all.end(), {&out, &lse});
  TensorView vo = out.view(), vl = lse.view();
  want_dtype("attention", "out", vo, a.q.dtype);
  want_dtype("attention", "lse", vl, stat_dtype(a.q.dtype));
  MIXT_CHECK(vo.numel() == a.q.numel() && vl.numel() == a.hq * a.tokens, "attention: output sizes");
  backend_of("attention", all).submit("attention", [=](const Stream& s) { MIXT_CALL(s, attention_forward, a, vo, vl); });
  return info.Env().Undefined();
}

// attentionBackward(q, k, v, docIds, spanIds, positions, causal, scale, out, dout, lse, dq, dk, dv)
MIXT_ENTRY(attention_backward) {
  std::vector<const TensorHandle*> all;
  AttentionArgs a = attention_args(info, all);
  TensorHandle &out = TensorHandle::arg(info, 8, "out"), &dout = TensorHandle::arg(info, 9, "dout"), &lse = TensorHandle::arg(info, 10, "lse");
  TensorHandle &dq = TensorHandle::arg(info, 11, "dq"), &dk = TensorHandle::arg(info, 12, "dk"), &dv = TensorHandle::arg(info, 13, "dv");
  all.insert(all.end(), {&out, &dout, &lse, &dq, &dk, &dv});
  TensorView vo = out.view(), vdo = dout.view(), vl = lse.view(), vdq = dq.view(), vdk = dk.view(), vdv = dv.view();
  for (auto [name, t] : {std::pair{"out", &vo}, {"dout", &vdo}, {"dq", &vdq}, {"dk", &vdk}, {"dv", &vdv}})
    want_dtype("attentionBackward", name, *t, a.q.dtype);
  want_dtype("attentionBackward", "lse", vl, stat_dtype(a.q.dtype));
  MIXT_CHECK(vo.numel() == a.q.numel() && vdo.numel() == a.q.numel() && vl.numel() == a.hq * a.tokens && vdq.numel() == a.q.numel() &&
                 vdk.numel() == a.k.numel() && vdv.numel() == a.v.numel(),
             "attentionBackward: sizes");
  backend_of("attentionBackward", all).submit("attentionBackward", [=](const Stream& s) {
    MIXT_CALL(s, attention_backward, a, vo, vdo, vl, vdq, vdk, vdv);
  });
  return info.Env().Undefined();
}

// rope(x, positions, theta, inverse, out)
MIXT_ENTRY(rope) {
  auto &x = TensorHandle::arg(info, 0, "x"), &p = TensorHandle::arg(info, 1, "positions"), &out = TensorHandle::arg(info, 4, "out");
  double theta = number_arg(info, 2, "theta");
  bool inverse = bool_arg(info, 3, "inverse");
  TensorView vx = x.view(), vp = p.view(), vo = out.view();
  want_float("rope", "x", vx);
  want_dtype("rope", "out", vo, vx.dtype);
  MIXT_CHECK(vx.ndim == 3 && vx.shape[2] % 2 == 0 && vp.numel() == vx.shape[0] && vp.dtype == DType::I32 && vo.numel() == vx.numel(), "rope: sizes");
  common_backend("rope", {&x, &p, &out}).submit("rope", [=](const Stream& s) { MIXT_CALL(s, rope, vx, vp, theta, inverse, vo); });
  return info.Env().Undefined();
}

// segmentIds(cuSeqlens, out)
MIXT_ENTRY(segment_ids) {
  auto &cu = TensorHandle::arg(info, 0, "cuSeqlens"), &out = TensorHandle::arg(info, 1, "out");
  TensorView vc = cu.view(), vo = out.view();
  MIXT_CHECK(vc.numel() >= 1 && vc.dtype == DType::I32 && vo.dtype == DType::I32, "segmentIds: sizes");
  common_backend("segmentIds", {&cu, &out}).submit("segmentIds", [=](const Stream& s) { MIXT_CALL(s, segment_ids, vc, vo); });
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("attentionForward", attention_forward);
MIXT_EXPORT("attentionBackward", attention_backward);
MIXT_EXPORT("rope", rope);
MIXT_EXPORT("segmentIds", segment_ids);

}  // namespace mixt
