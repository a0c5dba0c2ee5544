#include "async.h"

namespace mixt {

Napi::Promise PromiseWorker::start(Napi::Env env, Work work, Resolve resolve) {
  auto* w = new PromiseWorker(env, std::move(work), std::move(resolve));
  Napi::Promise p = w->deferred_.Promise();
  w->Queue();
  return p;
}

void PromiseWorker::Execute() {
  try {
    work_();
  } catch (const Error& e) {
    code_ = e.code;
    message_ = e.what();
  } catch (const std::bad_alloc&) {
    code_ = "ERR_OOM";
    message_ = "out of host memory";
  } catch (const std::exception& e) {
    code_ = "ERR_NATIVE";
    message_ = e.what();
  } catch (...) {
    code_ = "ERR_NATIVE";
    message_ = "unknown native exception";
  }
  work_ = nullptr;  // drop fences and buffers here, off the JS thread
}

void PromiseWorker::OnOK() {
  try {
    settle();
  } catch (...) {
    // The environment is going away: nothing can observe this promise any more.
  }
}

void PromiseWorker::settle() {
  Napi::Env env = Env();
  if (!code_.empty()) {
    deferred_.Reject(make_js_error(env, code_, message_).Value());
    return;
  }
  try {
    deferred_.Resolve(resolve_(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& e) {
  try {
    deferred_.Reject(e.Value());
  } catch (...) {
  }
}

}  // namespace mixt
