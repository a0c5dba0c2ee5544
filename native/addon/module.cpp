// Module entry: per-environment instance data and the registered entry points.
#include <napi.h>

#include "context.h"
#include "registry.h"
#include "tensor_handle.h"

namespace mixt {

std::vector<std::pair<const char*, Entry>>& entries() {
  static auto* v = new std::vector<std::pair<const char*, Entry>>();
  return *v;
}

static Napi::Value set_error_class(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass: expected a class");
  Context::of(info.Env()).error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* ctx = new Context();
  env.SetInstanceData<Context>(ctx);  // deleted with the environment (worker thread exit)
  Napi::Function handle = TensorHandle::define(env);
  ctx->handle_class = Napi::Persistent(handle);
  exports.Set("TensorHandle", handle);
  exports.Set("setErrorClass", Napi::Function::New(env, set_error_class, "setErrorClass"));
  for (auto& [name, fn] : entries()) exports.Set(name, Napi::Function::New(env, fn, name));
  return exports;
}

}  // namespace mixt

static Napi::Object init_module(Napi::Env env, Napi::Object exports) { return mixt::init(env, exports); }
NODE_API_MODULE(mixt_native, init_module)
