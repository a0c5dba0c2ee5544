// Entry point: grouped GEMM (native/kernels/grouped_gemm.h).
#include "../kernels/grouped_gemm.h"
#include "op_args.h"

namespace mixt {
namespace {

// groupedGemm(kind, a, b, offsets, out, groups, rows, nOut, kIn, beta)
MIXT_ENTRY(grouped_gemm) {
  GroupedGemmArgs p;
  p.kind = GroupedKind(int_arg(info, 0, "kind"));
  auto &a = TensorHandle::arg(info, 1, "a"), &b = TensorHandle::arg(info, 2, "b");
  auto &off = TensorHandle::arg(info, 3, "offsets"), &out = TensorHandle::arg(info, 4, "out");
  p.a = a.view();
  p.b = b.view();
  p.offsets = off.view();
  p.out = out.view();
  p.groups = int_arg(info, 5, "groups");
  p.rows = int_arg(info, 6, "rows");
  p.n_out = int_arg(info, 7, "nOut");
  p.k_in = int_arg(info, 8, "kIn");
  p.beta = number_arg(info, 9, "beta");
  const int64_t G = p.groups, N = p.rows, O = p.n_out, K = p.k_in;
  bool ok = G >= 1 && N >= 0 && O >= 0 && K >= 0 && p.offsets.dtype == DType::I32 && p.offsets.numel() == G + 1 &&
            p.a.dtype == p.out.dtype && p.b.dtype == p.out.dtype;
  switch (p.kind) {
    case GroupedKind::Forward: ok = ok && p.a.numel() == N * K && p.b.numel() == G * O * K && p.out.numel() == N * O; break;
    case GroupedKind::DX: ok = ok && p.a.numel() == N * O && p.b.numel() == G * O * K && p.out.numel() == N * K; break;
    case GroupedKind::DW: ok = ok && p.a.numel() == N * O && p.b.numel() == N * K && p.out.numel() == G * O * K; break;
    default: ok = false;
  }
  MIXT_CHECK(ok, "groupedGemm: sizes do not match");
  common_backend("groupedGemm", {&a, &b, &off, &out}).submit("groupedGemm", [=](const Stream& s) { MIXT_CALL(s, grouped_gemm, p); });
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("groupedGemm", grouped_gemm);

}  // namespace mixt
