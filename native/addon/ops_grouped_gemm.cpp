// Entry point: grouped GEMM (native/kernels/grouped_gemm.h).
#include "../kernels/grouped_gemm.h"
#include "op_args.h"

namespace mixt {
namespace {

// groupedGemm(kind, a, b, offsets, out, groups, rows, nOut, kIn, beta)
MIXT_ENTRY(grouped_gemm) {
  GroupedGemmArgs p;
  p.kind = GroupedKind(enum_arg(info, 0, "kind", 3));
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
  MIXT_CHECK(G >= 1 && G < kMaxElements && N >= 0 && O >= 0 && K >= 0, "groupedGemm: sizes out of range");
  want_float("groupedGemm", "out", p.out);
  want_dtype("groupedGemm", "offsets", p.offsets, DType::I32);
  const char* op = "groupedGemm";
  const int64_t NK = checked_mul(op, N, K), NO = checked_mul(op, N, O), GOK = checked_mul(op, G, O, K);
  bool ok = p.offsets.numel() == G + 1 && p.a.dtype == p.out.dtype && p.b.dtype == p.out.dtype;
  switch (p.kind) {
    case GroupedKind::Forward: ok = ok && p.a.numel() == NK && p.b.numel() == GOK && p.out.numel() == NO; break;
    case GroupedKind::DX: ok = ok && p.a.numel() == NO && p.b.numel() == GOK && p.out.numel() == NK; break;
    case GroupedKind::DW: ok = ok && p.a.numel() == NO && p.b.numel() == NK && p.out.numel() == GOK; break;
    default: ok = false;
  }
  MIXT_CHECK(ok, "groupedGemm: sizes do not match");
  common_backend("groupedGemm", {&a, &b, &off, &out}).submit("groupedGemm", [=](const Stream& s) { MIXT_CALL(s, grouped_gemm, p); });
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("groupedGemm", grouped_gemm);

}  // namespace mixt
