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

// The ordered queue and the thread that runs it. Shared by the backend and its thread, so a backend
// destroyed while a kernel still runs (a terminated worker, an exiting process) need not wait for it:
// the thread finishes the running item and the queued frees on its own.
class WorkQueue {
 public:
  struct Item {
    std::string op;
    std::function<void(const Stream&)> fn;
    bool runs_when_cancelled;  // frees: memory goes back even while the environment is torn down
  };

  uint64_t push(Item item) {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back(std::move(item));
    cv_.notify_all();
    return ++enqueued_;
  }
  uint64_t enqueued() {
    std::lock_guard<std::mutex> g(mu_);
    return enqueued_;
  }
  void cancel() {
    std::lock_guard<std::mutex> g(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }
  void stop() {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  bool cancelled() {
    std::lock_guard<std::mutex> g(mu_);
    return cancelled_;
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

  // Runs items in order until stopped with an empty queue. Items not started when the queue was
  // cancelled are skipped (their waits report ERR_CANCELLED), frees excepted.
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
      item.fn = nullptr;  // drop captures before signalling completion
      std::lock_guard<std::mutex> g(mu_);
      if (!err.first.empty() && error_code_.empty()) {
        error_code_ = err.first;
        error_message_ = err.second;
      }
      completed_++;
      done_cv_.notify_all();
    }
  }

 private:
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

  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<Item> queue_;
  uint64_t enqueued_ = 0, completed_ = 0;
  bool stop_ = false, cancelled_ = false;
  std::string error_code_, error_message_;
};

class CpuBackend : public Backend {
 public:
  CpuBackend() : Backend(-1), queue_(std::make_shared<WorkQueue>()) {
    worker_ = std::thread([q = queue_] {
      cpu::lower_thread_priority();
      q->loop();
    });
  }
  ~CpuBackend() override {
    queue_->stop();
    // Normally the worker drains the queue first (queued frees run too). Once cancelled (the
    // environment is going away) it finishes the running item and the frees on its own. If the last
    // reference died inside a queued closure, this runs on the worker itself.
    if (std::this_thread::get_id() == worker_.get_id() || queue_->cancelled())
      worker_.detach();
    else
      worker_.join();
  }

  void submit(const char* op, std::function<void(const Stream&)> fn) override { queue_->push({op, std::move(fn), false}); }

  void cancel_pending() override { queue_->cancel(); }

  std::shared_ptr<Fence> fence() override {
    return std::make_shared<CpuFence>(std::static_pointer_cast<CpuBackend>(shared_from_this()), queue_->enqueued());
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

  void wait(uint64_t ticket) { queue_->wait(ticket); }

 protected:
  void* raw_alloc(size_t bytes) override {
    void* p = nullptr;
    // 64-byte alignment for vector loads; aligned_alloc needs a size that is a multiple of it.
    if (posix_memalign(&p, 64, (bytes + 63) & ~size_t(63)) != 0) p = nullptr;
    return p;
  }
  void raw_free_ordered(void* ptr) override {
    queue_->push({"free", [ptr](const Stream&) { std::free(ptr); }, true});
  }

 private:
  std::shared_ptr<WorkQueue> queue_;
  std::thread worker_;
};

void CpuFence::wait() { backend_->wait(ticket_); }

}  // namespace

std::shared_ptr<Backend> make_cpu_backend() { return std::make_shared<CpuBackend>(); }

}  // namespace mixt
