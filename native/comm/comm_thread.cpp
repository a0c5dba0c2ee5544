#include "comm_thread.h"

#include <chrono>

namespace mixt {

CommThread& CommThread::get() {
  // never destroyed: a job may still block in a collective when the process exits
  static CommThread* self = new CommThread();
  return *self;
}

CommThread::CommThread() {
  thread_ = std::thread([this] { run(); });
  thread_.detach();
}

uint64_t CommThread::push(std::string what, std::function<void()> job) {
  std::lock_guard<std::mutex> g(mu_);
  uint64_t t = ++pushed_;
  queue_.push_back({t, std::move(what), std::move(job)});
  wake_.notify_one();
  return t;
}

uint64_t CommThread::last_ticket() {
  std::lock_guard<std::mutex> g(mu_);
  return pushed_;
}

void CommThread::set_identity(std::string who) {
  std::lock_guard<std::mutex> g(mu_);
  who_ = std::move(who);
}

void CommThread::run() {
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> l(mu_);
      wake_.wait(l, [this] { return !queue_.empty(); });
      item = std::move(queue_.front());
      queue_.pop_front();
      running_ = item.what;
      if (!error_code_.empty()) item.job = nullptr;  // out of step with the other ranks: skip
    }
    std::string code, message;
    try {
      if (item.job) item.job();
    } catch (const Error& e) {
      code = e.code;
      message = e.what();
    } catch (const std::exception& e) {
      code = "ERR_COMM";
      message = item.what + ": " + e.what();
    } catch (...) {
      code = "ERR_COMM";
      message = item.what + ": unknown exception";
    }
    item.job = nullptr;  // release buffers off the lock
    std::lock_guard<std::mutex> g(mu_);
    if (!code.empty() && error_code_.empty()) {
      error_code_ = code;
      error_message_ = message;
    }
    done_ = item.ticket;
    running_.clear();
    done_cv_.notify_all();
  }
}

void CommThread::wait(uint64_t ticket, double timeout_s) {
  std::unique_lock<std::mutex> l(mu_);
  auto reached = [&] { return done_ >= ticket || !error_code_.empty(); };
  if (timeout_s > 0) {
    if (!done_cv_.wait_for(l, std::chrono::duration<double>(timeout_s), reached)) {
      throw Error("ERR_COMM_TIMEOUT", "collective " + (running_.empty() ? std::string("work") : running_) + " on " + who_ +
                                          " did not complete within " + std::to_string(int(timeout_s)) +
                                          " s: a peer process died or stopped (MIXT_COMM_TIMEOUT sets the limit in seconds)");
    }
  } else {
    done_cv_.wait(l, reached);
  }
  if (!error_code_.empty()) throw Error(error_code_, error_message_);
}

}  // namespace mixt
