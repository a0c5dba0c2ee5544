// Helpers for op entry points: argument parsing and submitting work to the tensors' backend.
// Entry points are glue only: the TypeScript layer has already validated shapes and dtypes; these
// checks are the last line that keeps a bad call from reaching a kernel.
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
inline bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBoolean()) throw Error("ERR_INVALID_ARG", std::string(name) + ": expected a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

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
