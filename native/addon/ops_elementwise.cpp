// Entry points: elementwise family (see native/kernels/elementwise.h).
#include "../kernels/elementwise.h"
#include "op_args.h"

namespace mixt {
namespace {

// binary(op, a, b, out)
MIXT_ENTRY(binary) {
  auto op = BinaryOp(enum_arg(info, 0, "op", 6));
  auto &a = TensorHandle::arg(info, 1, "a"), &b = TensorHandle::arg(info, 2, "b"), &out = TensorHandle::arg(info, 3, "out");
  TensorView va = a.view(), vb = b.view(), vo = out.view();
  want_float("binary", "a", va);
  want_dtype("binary", "b", vb, va.dtype);
  want_dtype("binary", "out", vo, va.dtype);
  MIXT_CHECK(vb.numel() > 0 && va.numel() % vb.numel() == 0 && va.numel() == vo.numel(), "binary: sizes do not broadcast");
  common_backend("binary", {&a, &b, &out}).submit("binary", [=](const Stream& s) { MIXT_CALL(s, binary, op, va, vb, vo); });
  return info.Env().Undefined();
}

// unary(op, x, out)
MIXT_ENTRY(unary) {
  auto op = UnaryOp(enum_arg(info, 0, "op", 15));
  auto &x = TensorHandle::arg(info, 1, "x"), &out = TensorHandle::arg(info, 2, "out");
  TensorView vx = x.view(), vo = out.view();
  want_float("unary", "x", vx);
  want_dtype("unary", "out", vo, vx.dtype);
  MIXT_CHECK(vx.numel() == vo.numel(), "unary: sizes differ");
  common_backend("unary", {&x, &out}).submit("unary", [=](const Stream& s) { MIXT_CALL(s, unary, op, vx, vo); });
  return info.Env().Undefined();
}

// axpby(alpha, x, beta, y | null, out)
MIXT_ENTRY(axpby) {
  double alpha = number_arg(info, 0, "alpha"), beta = number_arg(info, 2, "beta");
  auto &x = TensorHandle::arg(info, 1, "x"), &out = TensorHandle::arg(info, 4, "out");
  TensorHandle* y = info[3].IsNull() ? nullptr : &TensorHandle::arg(info, 3, "y");
  TensorView vx = x.view(), vo = out.view(), vy = y ? y->view() : TensorView{};
  bool has_y = y != nullptr;
  want_float("axpby", "x", vx);
  want_dtype("axpby", "out", vo, vx.dtype);
  if (has_y) want_dtype("axpby", "y", vy, vx.dtype);
  MIXT_CHECK(vx.numel() == vo.numel() && (!has_y || vy.numel() == vx.numel()), "axpby: sizes differ");
  common_backend("axpby", {&x, y, &out}).submit("axpby", [=](const Stream& s) {
    MIXT_CALL(s, axpby, alpha, vx, beta, has_y ? &vy : nullptr, vo);
  });
  return info.Env().Undefined();
}

// cast(x, out)
MIXT_ENTRY(cast) {
  auto &x = TensorHandle::arg(info, 0, "x"), &out = TensorHandle::arg(info, 1, "out");
  TensorView vx = x.view(), vo = out.view();
  MIXT_CHECK(vx.numel() == vo.numel(), "cast: sizes differ");
  common_backend("cast", {&x, &out}).submit("cast", [=](const Stream& s) { MIXT_CALL(s, cast, vx, vo); });
  return info.Env().Undefined();
}

// fill(out, value)
MIXT_ENTRY(fill) {
  auto& out = TensorHandle::arg(info, 0, "out");
  double v = number_arg(info, 1, "value");
  TensorView vo = out.view();
  out.backend().submit("fill", [=](const Stream& s) { MIXT_CALL(s, fill, vo, v); });
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("binary", binary);
MIXT_EXPORT("unary", unary);
MIXT_EXPORT("axpby", axpby);
MIXT_EXPORT("cast", cast);
MIXT_EXPORT("fill", fill);

}  // namespace mixt
