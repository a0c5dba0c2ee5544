// Per-environment state (the addon is context-aware: each worker thread gets its own backends).
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "../kernels/runtime.h"

namespace mixt {

class Context {
 public:
  static Context& of(Napi::Env env);
  std::shared_ptr<Backend> backend(int device);  // -1 = CPU; CUDA backends are made on first use
  std::vector<std::shared_ptr<Backend>> live_backends();
  // The environment is going away: drop queued work nobody can read (see Backend::cancel_pending).
  // Called by the environment's cleanup hook and by lib at process 'exit'.
  void shutdown();

  Napi::FunctionReference error_class;   // lib's MixtError, set at load
  Napi::FunctionReference handle_class;  // TensorHandle constructor

 private:
  std::shared_ptr<Backend> cpu_;
  std::vector<std::shared_ptr<Backend>> cuda_;
};

// Throws a JS error: lib's MixtError(message, code) when registered, else an Error with .code.
[[noreturn]] void throw_js(Napi::Env env, const std::string& code, const std::string& message);
// Runs body; converts mixt::Error and std exceptions into JS errors.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& e) {
    throw_js(env, e.code, e.what());
  } catch (const std::bad_alloc&) {
    throw_js(env, "ERR_OOM", "out of host memory");
  } catch (const std::exception& e) {
    throw_js(env, "ERR_NATIVE", e.what());
  } catch (...) {
    throw_js(env, "ERR_NATIVE", "unknown native exception");
  }
}
Napi::Error make_js_error(Napi::Env env, const std::string& code, const std::string& message);

}  // namespace mixt
