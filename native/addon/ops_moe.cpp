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
  int64_t last = (a.rows - 1) * a.row_stride + (a.cols - 1) * a.col_stride;
  MIXT_CHECK(a.rows >= 0 && a.cols >= 1 && a.k >= 1 && a.k <= a.cols && a.row_stride >= 0 && a.col_stride >= 1 &&
                 (a.rows == 0 || last < a.scores.numel()) && vo.numel() == a.rows * a.k && vo.dtype == DType::I32,
             "topkRows: sizes");
  common_backend("topkRows", {&sc, &out}).submit("topkRows", [=](const Stream& s) { MIXT_CALL(s, topk_rows, a, vo); });
  return info.Env().Undefined();
}

RouterArgs router_args(const Napi::CallbackInfo& info) {
  RouterArgs a;
  a.logits = TensorHandle::arg(info, 0, "logits").view();
  a.k = int_arg(info, 1, "k");
  a.gate = GateKind(int_arg(info, 2, "gate"));
  a.renormalize = bool_arg(info, 3, "renormalize");
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
  MIXT_CHECK(vp.numel() == a.tokens * a.experts && vl.numel() == a.tokens && ve.numel() == a.tokens * a.k && vg.numel() == a.tokens * a.k,
             "routerTopk: sizes");
  common_backend("routerTopk", {&lg, &p, &l, &e, &g}).submit("routerTopk", [=](const Stream& s) { MIXT_CALL(s, router_topk, a, vp, vl, ve, vg); });
  return info.Env().Undefined();
}

// routerBackward(logits, k, gate, renormalize, probs, lse, experts, gates, dgates|null, dprobs|null, z, dlogits)
MIXT_ENTRY(router_backward) {
  RouterArgs a = router_args(info);
  auto& lg = TensorHandle::arg(info, 0, "logits");
  TensorView vp = TensorHandle::arg(info, 4, "probs").view(), vl = TensorHandle::arg(info, 5, "lse").view();
  TensorView ve = TensorHandle::arg(info, 6, "experts").view(), vg = TensorHandle::arg(info, 7, "gates").view();
  TensorView vdg = optional_view(info, 8, "dgates"), vdp = optional_view(info, 9, "dprobs");
  double z = number_arg(info, 10, "z");
  auto& dl = TensorHandle::arg(info, 11, "dlogits");
  TensorView vdl = dl.view();
  MIXT_CHECK(vdl.numel() == a.tokens * a.experts && (!vdg.data || vdg.numel() == a.tokens * a.k) &&
                 (!vdp.data || vdp.numel() == a.tokens * a.experts),
             "routerBackward: sizes");
  common_backend("routerBackward", {&lg, &dl}).submit("routerBackward", [=](const Stream& s) {
    MIXT_CALL(s, router_backward, a, vp, vl, ve, vg, vdg, vdp, z, vdl);
  });
  return info.Env().Undefined();
}

// rowScale(x, w, y)
MIXT_ENTRY(row_scale) {
  auto &x = TensorHandle::arg(info, 0, "x"), &w = TensorHandle::arg(info, 1, "w"), &y = TensorHandle::arg(info, 2, "y");
  TensorView vx = x.view(), vw = w.view(), vy = y.view();
  MIXT_CHECK(vw.numel() == vx.rows() && vy.numel() == vx.numel(), "rowScale: sizes");
  common_backend("rowScale", {&x, &w, &y}).submit("rowScale", [=](const Stream& s) { MIXT_CALL(s, row_scale, vx, vw, vy); });
  return info.Env().Undefined();
}

// rowDot(a, b, out)
MIXT_ENTRY(row_dot) {
  auto &a = TensorHandle::arg(info, 0, "a"), &b = TensorHandle::arg(info, 1, "b"), &o = TensorHandle::arg(info, 2, "out");
  TensorView va = a.view(), vb = b.view(), vo = o.view();
  MIXT_CHECK(vb.numel() == va.numel() && vo.numel() == va.rows(), "rowDot: sizes");
  common_backend("rowDot", {&a, &b, &o}).submit("rowDot", [=](const Stream& s) { MIXT_CALL(s, row_dot, va, vb, vo); });
  return info.Env().Undefined();
}

// slotTokens(slots, k, experts|null, noop, tokens)
MIXT_ENTRY(slot_tokens) {
  auto &sl = TensorHandle::arg(info, 0, "slots"), &tk = TensorHandle::arg(info, 4, "tokens");
  int64_t k = int_arg(info, 1, "k"), noop = int_arg(info, 3, "noop");
  TensorView vs = sl.view(), ve = optional_view(info, 2, "experts"), vt = tk.view();
  MIXT_CHECK(k >= 1 && vt.numel() == vs.numel(), "slotTokens: sizes");
  common_backend("slotTokens", {&sl, &tk}).submit("slotTokens", [=](const Stream& s) { MIXT_CALL(s, slot_tokens, vs, k, ve, noop, vt); });
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
  MIXT_CHECK(c >= 0 && vs.numel() == (vo.numel() - 1) * c && (!vord.data || vord.numel() == vp.numel()), "capacitySlots: sizes");
  backend_of("capacitySlots", all).submit("capacitySlots", [=](const Stream& s) { MIXT_CALL(s, capacity_slots, vp, vo, c, vord, vs); });
  return info.Env().Undefined();
}

// choiceGateIndex(chosen [E, C], experts, out)
MIXT_ENTRY(choice_gate_index) {
  auto &c = TensorHandle::arg(info, 0, "chosen"), &o = TensorHandle::arg(info, 2, "out");
  int64_t e = int_arg(info, 1, "experts");
  TensorView vc = c.view(), vo = o.view();
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
