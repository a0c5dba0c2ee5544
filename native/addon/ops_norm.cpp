// Entry points: norms and SwiGLU (native/kernels/norm.h).
#include "../kernels/norm.h"
#include "op_args.h"

namespace mixt {
namespace {

// Reads (kind, x, weight, bias|null, ids|null, groups, eps, mean|null, rstd) from argument `at`.
NormArgs norm_args(const Napi::CallbackInfo& info, size_t at, std::vector<const TensorHandle*>& all) {
  NormArgs a;
  a.kind = NormKind(int_arg(info, at, "kind"));
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
  MIXT_CHECK(a.groups >= 1 && a.weight.numel() == a.groups * a.dim && (!a.bias.data || a.bias.numel() == a.groups * a.dim) &&
                 (!a.ids.data || (a.ids.numel() == a.rows && a.ids.dtype == DType::I32)) && a.rstd.numel() == a.rows &&
                 (a.kind == NormKind::RMS || a.mean.numel() == a.rows),
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
  MIXT_CHECK(vdy.numel() == a.x.numel() && vdx.numel() == a.x.numel() && vdw.numel() == a.groups * a.dim, "norm backward: sizes");
  backend_of("normBackward", all).submit("normBackward", [=](const Stream& s) { MIXT_CALL(s, norm_backward, a, vdy, vdx, vdw, vdb); });
  return info.Env().Undefined();
}

// swiglu(gateUp, h)
MIXT_ENTRY(swiglu) {
  auto &gu = TensorHandle::arg(info, 0, "gateUp"), &h = TensorHandle::arg(info, 1, "h");
  TensorView vg = gu.view(), vh = h.view();
  int64_t f = vh.cols();
  MIXT_CHECK(vg.cols() == 2 * f && vg.rows() == vh.rows() && vg.dtype == vh.dtype, "swiglu: sizes");
  common_backend("swiglu", {&gu, &h}).submit("swiglu", [=](const Stream& s) { MIXT_CALL(s, swiglu_forward, vg, f, vh); });
  return info.Env().Undefined();
}

// swigluBackward(dh, gateUp, dGateUp)
MIXT_ENTRY(swiglu_backward) {
  auto &dh = TensorHandle::arg(info, 0, "dh"), &gu = TensorHandle::arg(info, 1, "gateUp"), &dgu = TensorHandle::arg(info, 2, "dGateUp");
  TensorView vd = dh.view(), vg = gu.view(), vo = dgu.view();
  int64_t f = vd.cols();
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
