// Entry points: norms and SwiGLU (native/kernels/norm.h).
#include "../kernels/norm.h"
#include "op_args.h"

namespace mixt {
namespace {

// Reads (kind, x, weight, bias|null, ids|null, groups, eps, mean|null, rstd) from argument `at`.
NormArgs norm_args(const Napi::CallbackInfo& info, size_t at, std::vector<const TensorHandle*>& all) {
  NormArgs a;
  a.kind = NormKind(enum_arg(info, at, "kind", 2));
  TensorHandle& x = TensorHandle::arg(info, at + 1, "x");
  TensorHandle& w = TensorHandle::arg(info, at + 2, "weight");
  all.push_back(&x);
  all.push_back(&w);
  a.x = x.view();
  a.weight = w.view();
  a.bias = optional_view(info, at + 3, "bias", &all);
  a.ids = optional_view(info, at + 4, "ids", &all);
  a.groups = int_arg(info, at + 5, "groups");
  a.eps = number_arg(info, at + 6, "eps");
  a.mean = optional_view(info, at + 7, "mean", &all);
  a.rstd = TensorHandle::arg(info, at + 8, "rstd").view();
  all.push_back(&TensorHandle::arg(info, at + 8, "rstd"));
  a.dim = a.x.cols();
  a.rows = a.x.rows();
  const char* op = "norm";
  want_float(op, "x", a.x);
  want_dtype(op, "weight", a.weight, a.x.dtype);
  if (a.bias.data) want_dtype(op, "bias", a.bias, a.x.dtype);
  if (a.ids.data) want_dtype(op, "ids", a.ids, DType::I32);
  if (a.mean.data) want_dtype(op, "mean", a.mean, stat_dtype(a.x.dtype));
  want_dtype(op, "rstd", a.rstd, stat_dtype(a.x.dtype));
  MIXT_CHECK(a.groups >= 1, "norm: groups >= 1");
  const int64_t gd = checked_mul(op, a.groups, a.dim);
  MIXT_CHECK(a.weight.numel() == gd && (!a.bias.data || a.bias.numel() == gd) && (!a.ids.data || a.ids.numel() == a.rows) &&
                 a.rstd.numel() == a.rows && (a.kind == NormKind::RMS || (a.mean.data && a.mean.numel() == a.rows)),
             "norm: sizes do not match");
  return a;
}

// normForward(kind, x, weight, bias, ids, groups, eps, mean, rstd, y)
MIXT_ENTRY(norm_forward) {
  std::vector<const TensorHandle*> all;
  NormArgs a = norm_args(info, 0, all);
  TensorHandle& y = TensorHandle::arg(info, 9, "y");
  all.push_back(&y);
  TensorView vy = y.view();
  want_dtype("norm", "y", vy, a.x.dtype);
  MIXT_CHECK(vy.numel() == a.x.numel(), "norm: output size");
  backend_of("norm", all).submit("norm", [=](const Stream& s) { MIXT_CALL(s, norm_forward, a, vy); });
  return info.Env().Undefined();
}

// normBackward(kind, x, weight, bias, ids, groups, eps, mean, rstd, dy, dx, dweight, dbias|null)
MIXT_ENTRY(norm_backward) {
  std::vector<const TensorHandle*> all;
  NormArgs a = norm_args(info, 0, all);
  TensorHandle &dy = TensorHandle::arg(info, 9, "dy"), &dx = TensorHandle::arg(info, 10, "dx"), &dw = TensorHandle::arg(info, 11, "dweight");
  all.insert(all.end(), {&dy, &dx, &dw});
  TensorView vdb = optional_view(info, 12, "dbias", &all);
  TensorView vdy = dy.view(), vdx = dx.view(), vdw = dw.view();
  for (auto [name, t] : {std::pair{"dy", &vdy}, {"dx", &vdx}, {"dweight", &vdw}, {"dbias", &vdb}})
    if (t->data) want_dtype("normBackward", name, *t, a.x.dtype);
  MIXT_CHECK(!vdb.data || vdb.numel() == a.groups * a.dim, "norm backward: dbias size");
  MIXT_CHECK(vdy.numel() == a.x.numel() && vdx.numel() == a.x.numel() && vdw.numel() == a.groups * a.dim, "norm backward: sizes");
  backend_of("normBackward", all).submit("normBackward", [=](const Stream& s) { MIXT_CALL(s, norm_backward, a, vdy, vdx, vdw, vdb); });
  return info.Env().Undefined();
}

// swiglu(gateUp, h)
MIXT_ENTRY(swiglu) {
  auto &gu = TensorHandle::arg(info, 0, "gateUp"), &h = TensorHandle::arg(info, 1, "h");
  TensorView vg = gu.view(), vh = h.view();
  int64_t f = vh.cols();
  want_float("swiglu", "gateUp", vg);
  want_dtype("swiglu", "h", vh, vg.dtype);
  MIXT_CHECK(vg.cols() == 2 * f && vg.rows() == vh.rows(), "swiglu: sizes");
  common_backend("swiglu", {&gu, &h}).submit("swiglu", [=](const Stream& s) { MIXT_CALL(s, swiglu_forward, vg, f, vh); });
  return info.Env().Undefined();
}

// swigluBackward(dh, gateUp, dGateUp)
MIXT_ENTRY(swiglu_backward) {
  auto &dh = TensorHandle::arg(info, 0, "dh"), &gu = TensorHandle::arg(info, 1, "gateUp"), &dgu = TensorHandle::arg(info, 2, "dGateUp");
  TensorView vd = dh.view(), vg = gu.view(), vo = dgu.view();
  int64_t f = vd.cols();
  want_float("swigluBackward", "gateUp", vg);
  want_dtype("swigluBackward", "dh", vd, vg.dtype);
  want_dtype("swigluBackward", "dGateUp", vo, vg.dtype);
  MIXT_CHECK(vg.cols() == 2 * f && vg.rows() == vd.rows() && vo.numel() == vg.numel(), "swigluBackward: sizes");
  common_backend("swigluBackward", {&dh, &gu, &dgu}).submit("swigluBackward", [=](const Stream& s) { MIXT_CALL(s, swiglu_backward, vd, vg, f, vo); });
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("normForward", norm_forward);
MIXT_EXPORT("normBackward", norm_backward);
MIXT_EXPORT("swiglu", swiglu);
MIXT_EXPORT("swigluBackward", swiglu_backward);

}  // namespace mixt
