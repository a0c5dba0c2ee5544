// Module entry: per-environment instance data and the registered entry points.
#include <dlfcn.h>
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

// Node unloads (dlclose) an addon when the last environment that loaded it ends, e.g. a terminated
// worker. The CPU thread pool's threads and a finishing queue thread still run this library's code
// then, so the library pins itself in memory once (RTLD_NODELETE).
static void pin_library() {
  static bool pinned = [] {
    Dl_info self;
    if (dladdr(reinterpret_cast<void*>(&pin_library), &self) && self.dli_fname)
      return dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE) != nullptr;
    return false;
  }();
  (void)pinned;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  pin_library();
  auto* ctx = new Context();
  env.SetInstanceData<Context>(ctx);  // deleted with the environment (worker thread exit)
  // Runs before the instance data is deleted: cancels queued work so teardown does not run it.
  napi_add_env_cleanup_hook(env, [](void* c) { static_cast<Context*>(c)->shutdown(); }, ctx);
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
