// Promises resolved off the JS thread: the blocking part runs on a libuv worker.
#pragma once

#include <napi.h>

#include <functional>

#include "context.h"

namespace mixt {

// work() blocks on a worker thread (wait on fences, copy bytes); resolve() builds the JS value on
// the JS thread. A mixt::Error from work() rejects the promise with its code. Settling never throws:
// while the environment is torn down (worker.terminate(), process exit) JS cannot run, the N-API
// calls fail, and nothing may leave the completion callback (it would abort the process).
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Resolve = std::function<Napi::Value(Napi::Env)>;
  static Napi::Promise start(Napi::Env env, Work work, Resolve resolve);

 private:
  PromiseWorker(Napi::Env env, Work work, Resolve resolve)
      : Napi::AsyncWorker(env, "mixt"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), resolve_(std::move(resolve)) {}
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  void settle();

  Napi::Promise::Deferred deferred_;
  Work work_;
  Resolve resolve_;
  std::string code_, message_;
};

}  // namespace mixt
