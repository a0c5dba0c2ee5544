// CPU backend runtime: one worker thread per Node environment runs submitted work in order.
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include "../kernels/runtime.h"
#include "parallel.h"

namespace mixt {
namespace {

class CpuBackend;

class CpuFence : public Fence {
 public:
  CpuFence(std::shared_ptr<CpuBackend> b, uint64_t ticket) : backend_(std::move(b)), ticket_(ticket) {}
  void wait() override;

 private:
  std::shared_ptr<CpuBackend> backend_;
  uint64_t ticket_;
};

class CpuMark : public TimeMark {
 public:
  std::shared_ptr<Fence> fence;
  std::shared_ptr<double> at = std::make_shared<double>(0);
  double elapsed_ms(TimeMark& earlier) override {
    auto& e = dynamic_cast<CpuMark&>(earlier);
    e.fence->wait();
    fence->wait();
    return *at - *e.at;
  }
};

class CpuBackend : public Backend {
 public:
  CpuBackend() : Backend(-1) {
    worker_ = std::thread([this] {
      cpu::lower_thread_priority();
      loop();
    });
  }
  ~CpuBackend() override {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    // The worker drains the queue first (queued frees run too). If the last reference died inside a
    // queued closure, this runs on the worker itself, which then finishes on its own.
    if (std::this_thread::get_id() == worker_.get_id())
      worker_.detach();
    else
      worker_.join();
  }

  void submit(const char* op, std::function<void(const Stream&)> fn) override { push(op, std::move(fn), false); }

  void cancel_pending() override {
    std::lock_guard<std::mutex> g(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

  std::shared_ptr<Fence> fence() override {
    std::lock_guard<std::mutex> g(mu_);
    return std::make_shared<CpuFence>(std::static_pointer_cast<CpuBackend>(shared_from_this()), enqueued_);
  }

  std::shared_ptr<TimeMark> mark() override {
    auto m = std::make_shared<CpuMark>();
    auto at = m->at;
    submit("mark", [at](const Stream&) {
      *at = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
    });
    m->fence = fence();
    return m;
  }

  void upload_fresh(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }

  std::shared_ptr<Fence> stage_out(const void* src, std::shared_ptr<HostStage> stage, size_t bytes) override {
    submit("copy_out", [src, stage, bytes](const Stream&) {
      if (bytes) std::memcpy(stage->ptr, src, bytes);
    });
    return fence();
  }

  void stage_in(void* dst, std::shared_ptr<HostStage> stage, size_t bytes, std::shared_ptr<Fence> after) override {
    submit("copy_in", [dst, stage, bytes, after](const Stream&) {
      if (after) after->wait();
      if (bytes) std::memcpy(dst, stage->ptr, bytes);
    });
  }

  // Blocks until every item up to `ticket` ran; then throws the first error recorded since the last
  // report (and clears it, so one failure is reported once).
  void wait(uint64_t ticket) {
    std::unique_lock<std::mutex> g(mu_);
    done_cv_.wait(g, [&] { return completed_ >= ticket; });
    if (!error_code_.empty()) {
      Error e(error_code_, error_message_);
      error_code_.clear();
      error_message_.clear();
      throw e;
    }
  }

 protected:
  void* raw_alloc(size_t bytes) override {
    void* p = nullptr;
    // 64-byte alignment for vector loads; aligned_alloc needs a size that is a multiple of it.
    if (posix_memalign(&p, 64, (bytes + 63) & ~size_t(63)) != 0) p = nullptr;
    return p;
  }
  void raw_free_ordered(void* ptr) override {
    push("free", [ptr](const Stream&) { std::free(ptr); }, true);
  }

 private:
  struct Item {
    std::string op;
    std::function<void(const Stream&)> fn;
    bool runs_when_cancelled;  // frees: memory goes back even while the environment is torn down
  };

  void push(const char* op, std::function<void(const Stream&)> fn, bool runs_when_cancelled) {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back({op, std::move(fn), runs_when_cancelled});
    enqueued_++;
    cv_.notify_all();
  }

  // Runs one item; returns the error it raised as (code, message), empty when none. Never throws:
  // an exception escaping this thread would abort the process.
  static std::pair<std::string, std::string> run_item(Item& item, const Stream& s) noexcept {
    try {
      try {
        item.fn(s);
        return {};
      } catch (const Error& e) {
        return {e.code, item.op + ": " + e.what()};
      } catch (const std::bad_alloc&) {
        return {"ERR_OOM", item.op + ": out of host memory"};
      } catch (const std::exception& e) {
        return {"ERR_NATIVE", item.op + ": " + e.what()};
      } catch (...) {
        return {"ERR_NATIVE", item.op + ": unknown native exception"};
      }
    } catch (...) {  // building the message itself ran out of memory
      return {"ERR_OOM", "out of host memory"};
    }
  }

  void loop() {
    Stream s;
    s.device = -1;
    for (;;) {
      Item item;
      bool skip;
      {
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait(g, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
        skip = cancelled_ && !item.runs_when_cancelled;
      }
      std::pair<std::string, std::string> err;
      if (skip) err = {"ERR_CANCELLED", item.op + ": cancelled, the environment is shutting down"};
      else err = run_item(item, s);
      const std::string& code = err.first;
      const std::string& msg = err.second;
      item.fn = nullptr;  // drop captures before signalling completion
      std::lock_guard<std::mutex> g(mu_);
      if (!code.empty() && error_code_.empty()) {
        error_code_ = code;
        error_message_ = msg;
      }
      completed_++;
      done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<Item> queue_;
  uint64_t enqueued_ = 0, completed_ = 0;
  bool stop_ = false, cancelled_ = false;
  std::string error_code_, error_message_;
  std::thread worker_;
};

void CpuFence::wait() { backend_->wait(ticket_); }

}  // namespace

std::shared_ptr<Backend> make_cpu_backend() { return std::make_shared<CpuBackend>(); }

}  // namespace mixt
