// Entry points: random fills, reductions and matmul (native/kernels/{random,reduce,matmul}.h).
#include "../kernels/matmul.h"
#include "../kernels/random.h"
#include "../kernels/reduce.h"
#include "op_args.h"

namespace mixt {
namespace {

uint64_t u64_from(const Napi::CallbackInfo& info, size_t lo, size_t hi, const char* name) {
  int64_t l = int_arg(info, lo, name), h = int_arg(info, hi, name);
  if (l < 0 || l > 0xffffffffLL || h < 0 || h > 0xffffffffLL) throw Error("ERR_INVALID_ARG", std::string(name) + ": 32-bit halves expected");
  return (uint64_t(h) << 32) | uint64_t(l);
}

// random(out, seedLo, seedHi, offsetLo, offsetHi, normal, a, b)
MIXT_ENTRY(random) {
  auto& out = TensorHandle::arg(info, 0, "out");
  uint64_t seed = u64_from(info, 1, 2, "seed"), offset = u64_from(info, 3, 4, "offset");
  bool normal = bool_arg(info, 5, "normal");
  double a = number_arg(info, 6, "a"), b = number_arg(info, 7, "b");
  TensorView vo = out.view();
  want_float("random", "out", vo);
  out.backend().submit("random", [=](const Stream& s) { MIXT_CALL(s, random, vo, seed, offset, normal, a, b); });
  return info.Env().Undefined();
}

// reduce(op, x, outer, n, inner, out)
MIXT_ENTRY(reduce) {
  auto op = ReduceOp(enum_arg(info, 0, "op", 5));
  auto &x = TensorHandle::arg(info, 1, "x"), &out = TensorHandle::arg(info, 5, "out");
  int64_t outer = int_arg(info, 2, "outer"), n = int_arg(info, 3, "n"), inner = int_arg(info, 4, "inner");
  TensorView vx = x.view(), vo = out.view();
  want_float("reduce", "x", vx);
  want_dtype("reduce", "out", vo, vx.dtype);
  MIXT_CHECK(checked_mul("reduce", outer, n, inner) == vx.numel() && checked_mul("reduce", outer, inner) == vo.numel(),
             "reduce: sizes do not match");
  common_backend("reduce", {&x, &out}).submit("reduce", [=](const Stream& s) { MIXT_CALL(s, reduce, op, vx, outer, n, inner, vo); });
  return info.Env().Undefined();
}

// matmul(a, b, c, batch, m, n, k, transA, transB, alpha, beta)
MIXT_ENTRY(matmul) {
  auto &a = TensorHandle::arg(info, 0, "a"), &b = TensorHandle::arg(info, 1, "b"), &c = TensorHandle::arg(info, 2, "c");
  MatmulArgs p;
  p.a = a.view();
  p.b = b.view();
  p.c = c.view();
  p.batch = int_arg(info, 3, "batch");
  p.m = int_arg(info, 4, "m");
  p.n = int_arg(info, 5, "n");
  p.k = int_arg(info, 6, "k");
  p.trans_a = bool_arg(info, 7, "transA");
  p.trans_b = bool_arg(info, 8, "transB");
  p.alpha = number_arg(info, 9, "alpha");
  p.beta = number_arg(info, 10, "beta");
  MIXT_CHECK(p.batch >= 0 && p.m >= 0 && p.n >= 0 && p.k >= 0, "matmul: negative size");
  want_float("matmul", "c", p.c);
  MIXT_CHECK(p.a.dtype == p.c.dtype && p.b.dtype == p.c.dtype, "matmul: dtypes differ");
  p.a_batched = p.a.numel() == checked_mul("matmul", p.batch, p.m, p.k) && p.batch > 1;
  p.b_batched = p.b.numel() == checked_mul("matmul", p.batch, p.k, p.n) && p.batch > 1;
  MIXT_CHECK((p.a_batched || p.a.numel() == checked_mul("matmul", p.m, p.k)) && (p.b_batched || p.b.numel() == checked_mul("matmul", p.k, p.n)) &&
                 p.c.numel() == checked_mul("matmul", p.batch, p.m, p.n),
             "matmul: sizes do not match");
  common_backend("matmul", {&a, &b, &c}).submit("matmul", [=](const Stream& s) { MIXT_CALL(s, matmul, p); });
  return info.Env().Undefined();
}

// assertFinite(x, name): the next read or sync fails with ERR_NON_FINITE naming `name` if x holds
// NaN or infinity (checked in stream order, without a host sync).
MIXT_ENTRY(assert_finite) {
  auto& x = TensorHandle::arg(info, 0, "x");
  std::string name = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "tensor";
  TensorView vx = x.view();
  want_float("assertFinite", "x", vx);
  std::string op = "assertFinite(" + name + ")";
  x.backend().submit(op.c_str(), [=](const Stream& s) { MIXT_CALL(s, assert_finite, vx); });
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("assertFinite", assert_finite);
MIXT_EXPORT("random", random);
MIXT_EXPORT("reduce", reduce);
MIXT_EXPORT("matmul", matmul);

}  // namespace mixt
