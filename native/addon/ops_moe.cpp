// Entry points: depth and expert routing (native/kernels/moe.h).
#include "../kernels/moe.h"
#include "op_args.h"

namespace mixt {
namespace {

// topkRows(scores, rows, cols, rowStride, colStride, k, flat, out)
MIXT_ENTRY(topk_rows) {
  auto &sc = TensorHandle::arg(info, 0, "scores"), &out = TensorHandle::arg(info, 7, "out");
  TopkRowsArgs a;
  a.scores = sc.view();
  a.rows = int_arg(info, 1, "rows");
  a.cols = int_arg(info, 2, "cols");
  a.row_stride = int_arg(info, 3, "rowStride");
  a.col_stride = int_arg(info, 4, "colStride");
  a.k = int_arg(info, 5, "k");
  a.flat = bool_arg(info, 6, "flat");
  TensorView vo = out.view();
  const char* op = "topkRows";
  want_dtype(op, "scores", a.scores, stat_dtype(a.scores.dtype));
  want_dtype(op, "out", vo, DType::I32);
  MIXT_CHECK(a.rows >= 0 && a.cols >= 1 && a.k >= 1 && a.k <= a.cols && a.row_stride >= 0 && a.col_stride >= 1, "topkRows: sizes");
  MIXT_CHECK(a.rows == 0 || checked_mul(op, a.rows - 1, a.row_stride) + checked_mul(op, a.cols - 1, a.col_stride) < a.scores.numel(),
             "topkRows: the strides reach past the scores");
  MIXT_CHECK(vo.numel() == checked_mul(op, a.rows, a.k), "topkRows: sizes");
  common_backend("topkRows", {&sc, &out}).submit("topkRows", [=](const Stream& s) { MIXT_CALL(s, topk_rows, a, vo); });
  return info.Env().Undefined();
}

// The tensors of a router choice: probs [T, E], lse [T], gates [T, k] in the logits' dtype, experts i32 [T, k].
void want_router_choice(const char* op, const RouterArgs& a, const TensorView& probs, const TensorView& lse, const TensorView& experts,
                        const TensorView& gates) {
  want_dtype(op, "probs", probs, a.logits.dtype);
  want_numel(op, "probs", probs, a.tokens * a.experts);
  want_dtype(op, "lse", lse, a.logits.dtype);
  want_numel(op, "lse", lse, a.tokens);
  want_dtype(op, "experts", experts, DType::I32);
  want_numel(op, "experts", experts, a.tokens * a.k);
  want_dtype(op, "gates", gates, a.logits.dtype);
  want_numel(op, "gates", gates, a.tokens * a.k);
}

RouterArgs router_args(const Napi::CallbackInfo& info) {
  RouterArgs a;
  a.logits = TensorHandle::arg(info, 0, "logits").view();
  a.k = int_arg(info, 1, "k");
  a.gate = GateKind(enum_arg(info, 2, "gate", 2));
  a.renormalize = bool_arg(info, 3, "renormalize");
  want_dtype("router", "logits", a.logits, stat_dtype(a.logits.dtype));
  MIXT_CHECK(a.logits.ndim == 2, "router: logits are [T, E]");
  a.tokens = a.logits.shape[0];
  a.experts = a.logits.shape[1];
  MIXT_CHECK(a.k >= 1 && a.k <= a.experts, "router: k out of range");
  return a;
}

// routerTopk(logits, k, gate, renormalize, probs, lse, experts, gates)
MIXT_ENTRY(router_topk) {
  RouterArgs a = router_args(info);
  auto &lg = TensorHandle::arg(info, 0, "logits"), &p = TensorHandle::arg(info, 4, "probs"), &l = TensorHandle::arg(info, 5, "lse");
  auto &e = TensorHandle::arg(info, 6, "experts"), &g = TensorHandle::arg(info, 7, "gates");
  TensorView vp = p.view(), vl = l.view(), ve = e.view(), vg = g.view();
  want_router_choice("routerTopk", a, vp, vl, ve, vg);
  MIXT_CHECK(vp.numel() == a.tokens * a.experts && vl.numel() == a.tokens && ve.numel() == a.tokens * a.k && vg.numel() == a.tokens * a.k,
             "routerTopk: sizes");
  common_backend("routerTopk", {&lg, &p, &l, &e, &g}).submit("routerTopk", [=](const Stream& s) { MIXT_CALL(s, router_topk, a, vp, vl, ve, vg); });
  return info.Env().Undefined();
}

// routerBackward(logits, k, gate, renormalize, probs, lse, experts, gates, dgates|null, dprobs|null, z, dlogits)
MIXT_ENTRY(router_backward) {
  RouterArgs a = router_args(info);
  std::vector<const TensorHandle*> all;
  for (auto [i, name] : {std::pair{0, "logits"}, {4, "probs"}, {5, "lse"}, {6, "experts"}, {7, "gates"}}) all.push_back(&TensorHandle::arg(info, i, name));
  TensorView vp = all[1]->view(), vl = all[2]->view(), ve = all[3]->view(), vg = all[4]->view();
  TensorView vdg = optional_view(info, 8, "dgates", &all), vdp = optional_view(info, 9, "dprobs", &all);
  double z = number_arg(info, 10, "z");
  auto& dl = TensorHandle::arg(info, 11, "dlogits");
  all.push_back(&dl);
  TensorView vdl = dl.view();
  const char* op = "routerBackward";
  want_router_choice(op, a, vp, vl, ve, vg);
  want_dtype(op, "dlogits", vdl, a.logits.dtype);
  want_numel(op, "dlogits", vdl, a.tokens * a.experts);
  if (vdg.data) {
    want_dtype(op, "dgates", vdg, a.logits.dtype);
    want_numel(op, "dgates", vdg, a.tokens * a.k);
  }
  if (vdp.data) {
    want_dtype(op, "dprobs", vdp, a.logits.dtype);
    want_numel(op, "dprobs", vdp, a.tokens * a.experts);
  }
  backend_of(op, all).submit("routerBackward", [=](const Stream& s) {
    MIXT_CALL(s, router_backward, a, vp, vl, ve, vg, vdg, vdp, z, vdl);
  });
  return info.Env().Undefined();
}

// rowScale(x, w, y)
MIXT_ENTRY(row_scale) {
  auto &x = TensorHandle::arg(info, 0, "x"), &w = TensorHandle::arg(info, 1, "w"), &y = TensorHandle::arg(info, 2, "y");
  TensorView vx = x.view(), vw = w.view(), vy = y.view();
  want_float("rowScale", "x", vx);
  want_dtype("rowScale", "w", vw, stat_dtype(vx.dtype));
  want_dtype("rowScale", "y", vy, vx.dtype);
  MIXT_CHECK(vw.numel() == vx.rows() && vy.numel() == vx.numel(), "rowScale: sizes");
  common_backend("rowScale", {&x, &w, &y}).submit("rowScale", [=](const Stream& s) { MIXT_CALL(s, row_scale, vx, vw, vy); });
  return info.Env().Undefined();
}

// rowDot(a, b, out)
MIXT_ENTRY(row_dot) {
  auto &a = TensorHandle::arg(info, 0, "a"), &b = TensorHandle::arg(info, 1, "b"), &o = TensorHandle::arg(info, 2, "out");
  TensorView va = a.view(), vb = b.view(), vo = o.view();
  want_float("rowDot", "a", va);
  want_dtype("rowDot", "b", vb, va.dtype);
  want_dtype("rowDot", "out", vo, stat_dtype(va.dtype));
  MIXT_CHECK(vb.numel() == va.numel() && vo.numel() == va.rows(), "rowDot: sizes");
  common_backend("rowDot", {&a, &b, &o}).submit("rowDot", [=](const Stream& s) { MIXT_CALL(s, row_dot, va, vb, vo); });
  return info.Env().Undefined();
}

// slotTokens(slots, k, experts|null, noop, tokens)
MIXT_ENTRY(slot_tokens) {
  auto &sl = TensorHandle::arg(info, 0, "slots"), &tk = TensorHandle::arg(info, 4, "tokens");
  int64_t k = int_arg(info, 1, "k"), noop = int_arg(info, 3, "noop");
  std::vector<const TensorHandle*> all{&sl, &tk};
  TensorView vs = sl.view(), ve = optional_view(info, 2, "experts", &all), vt = tk.view();
  want_dtype("slotTokens", "slots", vs, DType::I32);
  if (ve.data) want_dtype("slotTokens", "experts", ve, DType::I32);
  want_dtype("slotTokens", "tokens", vt, DType::I32);
  MIXT_CHECK(k >= 1 && vt.numel() == vs.numel(), "slotTokens: sizes");
  backend_of("slotTokens", all).submit("slotTokens", [=](const Stream& s) { MIXT_CALL(s, slot_tokens, vs, k, ve, noop, vt); });
  return info.Env().Undefined();
}

// assignmentPriority(rows|null, tokens, k, order)
MIXT_ENTRY(assignment_priority) {
  std::vector<const TensorHandle*> all;
  TensorView vr = optional_view(info, 0, "rows", &all);
  int64_t n = int_arg(info, 1, "tokens"), k = int_arg(info, 2, "k");
  auto& o = TensorHandle::arg(info, 3, "order");
  all.push_back(&o);
  TensorView vo = o.view();
  MIXT_CHECK(n >= 0 && k >= 1 && vo.numel() == n * k && vo.dtype == DType::I32 && (!vr.data || (vr.numel() == n && vr.dtype == DType::I32)),
             "assignmentPriority: sizes");
  backend_of("assignmentPriority", all).submit("assignmentPriority", [=](const Stream& s) { MIXT_CALL(s, assignment_priority, vr, n, k, vo); });
  return info.Env().Undefined();
}

// capacitySlots(perm, offsets, capacity, order|null, slots)
MIXT_ENTRY(capacity_slots) {
  auto &p = TensorHandle::arg(info, 0, "perm"), &o = TensorHandle::arg(info, 1, "offsets"), &sl = TensorHandle::arg(info, 4, "slots");
  std::vector<const TensorHandle*> all{&p, &o, &sl};
  int64_t c = int_arg(info, 2, "capacity");
  TensorView vp = p.view(), vo = o.view(), vs = sl.view(), vord = optional_view(info, 3, "order", &all);
  for (auto [name, t] : {std::pair{"perm", &vp}, {"offsets", &vo}, {"slots", &vs}}) want_dtype("capacitySlots", name, *t, DType::I32);
  if (vord.data) want_dtype("capacitySlots", "order", vord, DType::I32);
  MIXT_CHECK(c >= 0 && vo.numel() >= 1 && vs.numel() == checked_mul("capacitySlots", vo.numel() - 1, c) && (!vord.data || vord.numel() == vp.numel()),
             "capacitySlots: sizes");
  backend_of("capacitySlots", all).submit("capacitySlots", [=](const Stream& s) { MIXT_CALL(s, capacity_slots, vp, vo, c, vord, vs); });
  return info.Env().Undefined();
}

// choiceGateIndex(chosen [E, C], experts, out)
MIXT_ENTRY(choice_gate_index) {
  auto &c = TensorHandle::arg(info, 0, "chosen"), &o = TensorHandle::arg(info, 2, "out");
  int64_t e = int_arg(info, 1, "experts");
  TensorView vc = c.view(), vo = o.view();
  want_dtype("choiceGateIndex", "chosen", vc, DType::I32);
  want_dtype("choiceGateIndex", "out", vo, DType::I32);
  MIXT_CHECK(e >= 1 && vc.numel() % e == 0 && vo.numel() == vc.numel(), "choiceGateIndex: sizes");
  common_backend("choiceGateIndex", {&c, &o}).submit("choiceGateIndex", [=](const Stream& s) { MIXT_CALL(s, choice_gate_index, vc, e, vo); });
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("choiceGateIndex", choice_gate_index);
MIXT_EXPORT("topkRows", topk_rows);
MIXT_EXPORT("routerTopk", router_topk);
MIXT_EXPORT("routerBackward", router_backward);
MIXT_EXPORT("rowScale", row_scale);
MIXT_EXPORT("rowDot", row_dot);
MIXT_EXPORT("slotTokens", slot_tokens);
MIXT_EXPORT("capacitySlots", capacity_slots);
MIXT_EXPORT("assignmentPriority", assignment_priority);

}  // namespace mixt
