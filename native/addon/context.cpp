#include "context.h"

namespace mixt {

Context& Context::of(Napi::Env env) { return *env.GetInstanceData<Context>(); }

std::shared_ptr<Backend> Context::backend(int device) {
  if (device < 0) {
    if (!cpu_) cpu_ = make_cpu_backend();
    return cpu_;
  }
#ifdef MIXT_WITH_CUDA
  if (size_t(device) >= cuda_.size()) cuda_.resize(device + 1);
  if (!cuda_[device]) cuda_[device] = make_cuda_backend(device);
  return cuda_[device];
#else
  throw Error("ERR_NO_CUDA", "this build of mixt has no CUDA backend (built without nvcc)");
#endif
}

std::vector<std::shared_ptr<Backend>> Context::live_backends() {
  std::vector<std::shared_ptr<Backend>> v;
  if (cpu_) v.push_back(cpu_);
  for (auto& b : cuda_)
    if (b) v.push_back(b);
  return v;
}

void Context::shutdown() {
  for (auto& b : live_backends()) b->cancel_pending();
}

Napi::Error make_js_error(Napi::Env env, const std::string& code, const std::string& message) {
  Context& ctx = Context::of(env);
  if (!ctx.error_class.IsEmpty()) {
    Napi::Value v = ctx.error_class.New({Napi::String::New(env, message), Napi::String::New(env, code)});
    return Napi::Error(env, v);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

void throw_js(Napi::Env env, const std::string& code, const std::string& message) {
  throw make_js_error(env, code, message);
}

}  // namespace mixt
