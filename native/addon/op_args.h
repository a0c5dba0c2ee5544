// The validation layer every op entry point goes through. The TypeScript layer validates first, but
// the addon trusts nothing it is given: each entry checks the handle type (TensorHandle::arg), the
// dtype and element count of every tensor the kernel reads or writes, that all tensors are on one
// device, and size products in overflow-checked 64-bit arithmetic. Index data (ids, offsets, slots)
// is checked where it is used, by the kernel, as ERR_BAD_DATA.
#pragma once

#include <napi.h>

#include <cmath>
#include <initializer_list>
#include <vector>

#include "context.h"
#include "registry.h"
#include "tensor_handle.h"

namespace mixt {

inline double number_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Error("ERR_INVALID_ARG", std::string(name) + ": expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}
inline int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d = number_arg(info, i, name);
  if (d != std::floor(d) || std::fabs(d) > 9007199254740991.0)
    throw Error("ERR_INVALID_ARG", std::string(name) + ": expected an integer");
  return int64_t(d);
}
// An enum code in [0, count).
inline int64_t enum_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t count) {
  int64_t v = int_arg(info, i, name);
  if (v < 0 || v >= count) throw Error("ERR_INVALID_ARG", std::string(name) + ": unknown code " + std::to_string(v));
  return v;
}
inline bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBoolean()) throw Error("ERR_INVALID_ARG", std::string(name) + ": expected a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// a * b, or an error when the product leaves [0, kMaxElements] (sizes are never negative here).
inline int64_t checked_mul(const char* op, int64_t a, int64_t b) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || r > kMaxElements)
    throw Error("ERR_INVALID_ARG", std::string(op) + ": size product " + std::to_string(a) + " x " + std::to_string(b) +
                                       " is negative or exceeds the limit of 2^46 elements");
  return r;
}
inline int64_t checked_mul(const char* op, int64_t a, int64_t b, int64_t c) { return checked_mul(op, checked_mul(op, a, b), c); }

[[noreturn]] inline void bad_tensor(const char* op, const char* name, const std::string& what) {
  throw Error("ERR_INVALID_ARG", std::string(op) + ": tensor \"" + name + "\" " + what);
}
inline void want_dtype(const char* op, const char* name, const TensorView& t, DType d) {
  if (t.dtype != d) bad_tensor(op, name, std::string("has dtype ") + dtype_name(t.dtype) + ", expected " + dtype_name(d));
}
inline bool is_float(DType d) { return d == DType::F32 || d == DType::F64 || d == DType::BF16; }
inline void want_float(const char* op, const char* name, const TensorView& t) {
  if (!is_float(t.dtype)) bad_tensor(op, name, std::string("has dtype ") + dtype_name(t.dtype) + ", expected a float dtype");
}
inline void want_numel(const char* op, const char* name, const TensorView& t, int64_t n) {
  if (t.numel() != n) bad_tensor(op, name, "has " + std::to_string(t.numel()) + " elements, expected " + std::to_string(n));
}
// The dtype of statistics and gates beside a float tensor: f64 in f64 runs, else f32.
inline DType stat_dtype(DType d) { return d == DType::F64 ? DType::F64 : DType::F32; }

// The backend every tensor of an op lives on; throws when they differ.
inline Backend& common_backend(const char* op, std::initializer_list<const TensorHandle*> tensors) {
  Backend* b = nullptr;
  for (const TensorHandle* t : tensors) {
    if (!t) continue;
    if (b && &t->backend() != b)
      throw Error("ERR_DEVICE_MISMATCH", std::string(op) + ": tensors are on different devices (" + b->name() +
                                             " and " + t->backend().name() + ")");
    b = &t->backend();
  }
  if (!b) throw Error("ERR_INVALID_ARG", std::string(op) + ": no tensor given");
  return *b;
}

// An optional tensor argument (null/undefined: absent, data null); a present one joins `all`.
inline TensorView optional_view(const Napi::CallbackInfo& info, size_t i, const char* name, std::vector<const TensorHandle*>* all = nullptr) {
  if (info[i].IsNull() || info[i].IsUndefined()) return TensorView{};
  TensorHandle& h = TensorHandle::arg(info, i, name);
  if (all) all->push_back(&h);
  return h.view();
}

// The backend of a list of tensors; throws when they differ.
inline Backend& backend_of(const char* op, const std::vector<const TensorHandle*>& all) {
  Backend* b = nullptr;
  for (auto* t : all) {
    if (b && &t->backend() != b)
      throw Error("ERR_DEVICE_MISMATCH", std::string(op) + ": tensors are on different devices (" + b->name() + " and " + t->backend().name() + ")");
    b = &t->backend();
  }
  if (!b) throw Error("ERR_INVALID_ARG", std::string(op) + ": no tensor given");
  return *b;
}

[[noreturn]] inline void no_cuda() { throw Error("ERR_NO_CUDA", "built without CUDA"); }

}  // namespace mixt

// Calls the CPU or the CUDA implementation of a kernel, by where the stream runs.
#ifdef MIXT_WITH_CUDA
#define MIXT_CALL(s, fn, ...) ((s).is_cpu() ? ::mixt::cpu::fn(s, __VA_ARGS__) : ::mixt::cuda::fn(s, __VA_ARGS__))
#else
#define MIXT_CALL(s, fn, ...) ((s).is_cpu() ? ::mixt::cpu::fn(s, __VA_ARGS__) : ::mixt::no_cuda())
#endif

// Defines an entry point whose body runs with native errors turned into JS errors.
#define MIXT_ENTRY(fn)                                                 \
  static Napi::Value fn##_body(const Napi::CallbackInfo& info);        \
  static Napi::Value fn(const Napi::CallbackInfo& info) {              \
    return ::mixt::guarded(info.Env(), [&] { return fn##_body(info); }); \
  }                                                                    \
  static Napi::Value fn##_body(const Napi::CallbackInfo& info)
