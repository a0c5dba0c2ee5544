// Entry points: routing family (native/kernels/routing.h).
#include "../kernels/routing.h"
#include "op_args.h"

namespace mixt {
namespace {

// routingPlan(ids, groups, counts, offsets, perm, inv)
MIXT_ENTRY(routing_plan) {
  auto& ids = TensorHandle::arg(info, 0, "ids");
  int64_t groups = int_arg(info, 1, "groups");
  auto &counts = TensorHandle::arg(info, 2, "counts"), &offsets = TensorHandle::arg(info, 3, "offsets");
  auto &perm = TensorHandle::arg(info, 4, "perm"), &inv = TensorHandle::arg(info, 5, "inv");
  TensorView vi = ids.view(), vc = counts.view(), vo = offsets.view(), vp = perm.view(), vq = inv.view();
  const char* op = "routingPlan";
  want_dtype(op, "ids", vi, DType::I32);
  want_dtype(op, "counts", vc, DType::I32);
  want_dtype(op, "offsets", vo, DType::I32);
  want_dtype(op, "perm", vp, DType::I32);
  want_dtype(op, "inv", vq, DType::I32);
  MIXT_CHECK(groups >= 1 && groups < kMaxElements && vc.numel() == groups && vo.numel() == groups + 1 &&
                 vp.numel() == vi.numel() && vq.numel() == vi.numel(),
             "routingPlan: sizes do not match");
  common_backend("routingPlan", {&ids, &counts, &offsets, &perm, &inv}).submit("routingPlan", [=](const Stream& s) {
    MIXT_CALL(s, routing_plan, vi, groups, vc, vo, vp, vq);
  });
  return info.Env().Undefined();
}

// gatherRows(x, index, row, out)
MIXT_ENTRY(gather_rows) {
  auto &x = TensorHandle::arg(info, 0, "x"), &index = TensorHandle::arg(info, 1, "index"), &out = TensorHandle::arg(info, 3, "out");
  int64_t row = int_arg(info, 2, "row");
  TensorView vx = x.view(), vi = index.view(), vo = out.view();
  want_dtype("gatherRows", "index", vi, DType::I32);
  MIXT_CHECK(row >= 0 && vx.dtype == vo.dtype && vo.numel() == checked_mul("gatherRows", vi.numel(), row) &&
                 (row == 0 || vx.numel() % row == 0),
             "gatherRows: sizes do not match");
  common_backend("gatherRows", {&x, &index, &out}).submit("gatherRows", [=](const Stream& s) { MIXT_CALL(s, gather_rows, vx, vi, row, vo); });
  return info.Env().Undefined();
}

// scatterRows(y, index, row, accumulate, out)
MIXT_ENTRY(scatter_rows) {
  auto &y = TensorHandle::arg(info, 0, "y"), &index = TensorHandle::arg(info, 1, "index"), &out = TensorHandle::arg(info, 4, "out");
  int64_t row = int_arg(info, 2, "row");
  bool acc = bool_arg(info, 3, "accumulate");
  TensorView vy = y.view(), vi = index.view(), vo = out.view();
  want_dtype("scatterRows", "index", vi, DType::I32);
  want_float("scatterRows", "y", vy);
  MIXT_CHECK(row >= 0 && vy.dtype == vo.dtype && vy.numel() == checked_mul("scatterRows", vi.numel(), row) &&
                 (row == 0 || vo.numel() % row == 0),
             "scatterRows: sizes do not match");
  common_backend("scatterRows", {&y, &index, &out}).submit("scatterRows", [=](const Stream& s) { MIXT_CALL(s, scatter_rows, vy, vi, row, acc, vo); });
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("routingPlan", routing_plan);
MIXT_EXPORT("gatherRows", gather_rows);
MIXT_EXPORT("scatterRows", scatter_rows);

}  // namespace mixt
