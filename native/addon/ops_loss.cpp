// Entry points: loss and optimiser families (native/kernels/loss.h).
#include "../kernels/loss.h"
#include "op_args.h"

namespace mixt {
namespace {

// crossEntropyRows(logits, targets, loss, lse, correct)
MIXT_ENTRY(ce_rows) {
  auto &x = TensorHandle::arg(info, 0, "logits"), &t = TensorHandle::arg(info, 1, "targets");
  auto &l = TensorHandle::arg(info, 2, "loss"), &e = TensorHandle::arg(info, 3, "lse"), &c = TensorHandle::arg(info, 4, "correct");
  TensorView vx = x.view(), vt = t.view(), vl = l.view(), ve = e.view(), vc = c.view();
  const char* op = "crossEntropyRows";
  want_float(op, "logits", vx);
  want_dtype(op, "targets", vt, DType::I32);
  want_dtype(op, "loss", vl, stat_dtype(vx.dtype));
  want_dtype(op, "lse", ve, stat_dtype(vx.dtype));
  want_dtype(op, "correct", vc, DType::I32);
  int64_t R = vx.rows();
  MIXT_CHECK(vt.numel() == R && vl.numel() == R && ve.numel() == R && vc.numel() == R, "crossEntropyRows: sizes");
  common_backend("crossEntropyRows", {&x, &t, &l, &e, &c}).submit("crossEntropyRows", [=](const Stream& s) { MIXT_CALL(s, cross_entropy_rows, vx, vt, vl, ve, vc); });
  return info.Env().Undefined();
}

// crossEntropyRowsBackward(logits, targets, lse, dloss)
MIXT_ENTRY(ce_rows_backward) {
  auto &x = TensorHandle::arg(info, 0, "logits"), &t = TensorHandle::arg(info, 1, "targets");
  auto &e = TensorHandle::arg(info, 2, "lse"), &d = TensorHandle::arg(info, 3, "dLoss");
  TensorView vx = x.view(), vt = t.view(), ve = e.view(), vd = d.view();
  const char* op = "crossEntropyRowsBackward";
  want_float(op, "logits", vx);
  want_dtype(op, "targets", vt, DType::I32);
  want_dtype(op, "lse", ve, stat_dtype(vx.dtype));
  want_dtype(op, "dLoss", vd, stat_dtype(vx.dtype));
  int64_t R = vx.rows();
  MIXT_CHECK(vt.numel() == R && ve.numel() == R && vd.numel() == R, "crossEntropyRowsBackward: sizes");
  common_backend("crossEntropyRowsBackward", {&x, &t, &e, &d}).submit("crossEntropyRowsBackward", [=](const Stream& s) {
    MIXT_CALL(s, cross_entropy_rows_backward, vx, vt, ve, vd);
  });
  return info.Env().Undefined();
}

// groupSum(values, ids, mask|null, groups, sums, counts)
MIXT_ENTRY(group_sum) {
  auto &v = TensorHandle::arg(info, 0, "values"), &ids = TensorHandle::arg(info, 1, "ids");
  std::vector<const TensorHandle*> all{&v, &ids};
  TensorView vm = optional_view(info, 2, "mask", &all);
  int64_t G = int_arg(info, 3, "groups");
  auto &su = TensorHandle::arg(info, 4, "sums"), &co = TensorHandle::arg(info, 5, "counts");
  all.insert(all.end(), {&su, &co});
  TensorView vv = v.view(), vi = ids.view(), vs = su.view(), vc = co.view();
  const char* op = "groupSum";
  want_dtype(op, "values", vv, stat_dtype(vv.dtype));
  want_dtype(op, "ids", vi, DType::I32);
  if (vm.data) want_dtype(op, "mask", vm, DType::I32);
  want_dtype(op, "sums", vs, vv.dtype);
  want_dtype(op, "counts", vc, vv.dtype);
  MIXT_CHECK(G >= 1 && G < kMaxElements && vi.numel() == vv.numel() && (!vm.data || vm.numel() == vv.numel()) && vs.numel() == G && vc.numel() == G, "groupSum: sizes");
  backend_of("groupSum", all).submit("groupSum", [=](const Stream& s) { MIXT_CALL(s, group_sum, vv, vi, vm, G, vs, vc); });
  return info.Env().Undefined();
}

// adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step, gradScale|null, copy|null)
MIXT_ENTRY(adamw) {
  auto &p = TensorHandle::arg(info, 0, "param"), &g = TensorHandle::arg(info, 1, "grad");
  auto &m = TensorHandle::arg(info, 2, "m"), &v = TensorHandle::arg(info, 3, "v");
  AdamArgs a;
  a.lr = number_arg(info, 4, "lr");
  a.beta1 = number_arg(info, 5, "beta1");
  a.beta2 = number_arg(info, 6, "beta2");
  a.eps = number_arg(info, 7, "eps");
  a.weight_decay = number_arg(info, 8, "weightDecay");
  a.step = number_arg(info, 9, "step");
  std::vector<const TensorHandle*> all{&p, &g, &m, &v};
  TensorView vs = optional_view(info, 10, "gradScale", &all), vc = optional_view(info, 11, "copy", &all);
  TensorView vp = p.view(), vg = g.view(), vm = m.view(), vv = v.view();
  const char* op = "adamw";
  want_dtype(op, "param", vp, stat_dtype(vp.dtype));
  want_float(op, "grad", vg);
  want_dtype(op, "m", vm, vp.dtype);
  want_dtype(op, "v", vv, vp.dtype);
  if (vs.data) {
    want_dtype(op, "gradScale", vs, DType::F32);
    want_numel(op, "gradScale", vs, 1);
  }
  if (vc.data) want_float(op, "copy", vc);
  int64_t n = vp.numel();
  MIXT_CHECK(vg.numel() == n && vm.numel() == n && vv.numel() == n && (!vc.data || vc.numel() == n), "adamw: sizes");
  backend_of("adamw", all).submit("adamw", [=](const Stream& s) { MIXT_CALL(s, adamw, vp, vg, vm, vv, a, vs, vc); });
  return info.Env().Undefined();
}

// sumSquaresInto(x, out)
MIXT_ENTRY(sum_squares_into) {
  auto &x = TensorHandle::arg(info, 0, "x"), &o = TensorHandle::arg(info, 1, "out");
  TensorView vx = x.view(), vo = o.view();
  want_float("sumSquaresInto", "x", vx);
  want_dtype("sumSquaresInto", "out", vo, stat_dtype(vo.dtype));
  MIXT_CHECK(vo.numel() == 1, "sumSquaresInto: out has one element");
  common_backend("gradNormSquared", {&x, &o}).submit("gradNormSquared", [=](const Stream& s) { MIXT_CALL(s, sum_squares_into, vx, vo); });
  return info.Env().Undefined();
}

// clipCoefficient(normSq, maxNorm, out)
MIXT_ENTRY(clip_coefficient) {
  auto &n = TensorHandle::arg(info, 0, "normSquared"), &o = TensorHandle::arg(info, 2, "out");
  double mx = number_arg(info, 1, "maxNorm");
  TensorView vn = n.view(), vo = o.view();
  want_dtype("clipCoefficient", "normSquared", vn, stat_dtype(vn.dtype));
  want_numel("clipCoefficient", "normSquared", vn, 1);
  want_dtype("clipCoefficient", "out", vo, DType::F32);
  want_numel("clipCoefficient", "out", vo, 1);
  common_backend("clipCoefficient", {&n, &o}).submit("clipCoefficient", [=](const Stream& s) { MIXT_CALL(s, clip_coefficient, vn, mx, vo); });
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("crossEntropyRows", ce_rows);
MIXT_EXPORT("crossEntropyRowsBackward", ce_rows_backward);
MIXT_EXPORT("groupSum", group_sum);
MIXT_EXPORT("adamw", adamw);
MIXT_EXPORT("sumSquaresInto", sum_squares_into);
MIXT_EXPORT("clipCoefficient", clip_coefficient);

}  // namespace mixt
