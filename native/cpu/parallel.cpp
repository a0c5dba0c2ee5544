#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace mixt::cpu {
namespace {

struct Job {
  const std::function<void(int64_t, int64_t)>* fn;
  int64_t n, chunk, nchunks;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;
  std::exception_ptr error;

  // Claims and runs chunks until none are left. Returns false when no chunk was left to claim.
  bool work() {
    bool any = false;
    for (;;) {
      int64_t c = next.fetch_add(1);
      if (c >= nchunks) return any;
      any = true;
      int64_t b = c * chunk, e = std::min(n, b + chunk);
      try {
        (*fn)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> g(mu);
        if (!error) error = std::current_exception();
      }
      if (done.fetch_add(1) + 1 == nchunks) {
        std::lock_guard<std::mutex> g(mu);
        cv.notify_all();
      }
    }
  }
};

class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    for (int i = 0; i < threads - 1; i++)
      std::thread([this] {
        lower_thread_priority();
        loop();
      }).detach();
  }
  int threads() const { return threads_; }

  void run(const std::shared_ptr<Job>& job) {
    if (threads_ > 1 && job->nchunks > 1) {
      std::lock_guard<std::mutex> g(mu_);
      jobs_.push_back(job);
      cv_.notify_all();
    }
    job->work();
    std::unique_lock<std::mutex> g(job->mu);
    job->cv.wait(g, [&] { return job->done.load() == job->nchunks; });
  }

 private:
  void loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait(g, [&] { return !jobs_.empty(); });
        job = jobs_.front();
        if (job->next.load() >= job->nchunks) {
          jobs_.pop_front();
          continue;
        }
      }
      if (!job->work()) {
        std::lock_guard<std::mutex> g(mu_);
        if (!jobs_.empty() && jobs_.front() == job) jobs_.pop_front();
      }
    }
  }

  int threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;
};

Pool& pool() {
  // Leaked on purpose: detached workers may outlive static destruction at process exit.
  static Pool* p = [] {
    int n = int(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("MIXT_NUM_THREADS")) n = std::atoi(env);
    return new Pool(std::max(1, std::min(n, 256)));
  }();
  return *p;
}

}  // namespace

int num_threads() { return pool().threads(); }

void lower_thread_priority() {
#if defined(__linux__)
  int nice = 5;
  if (const char* env = std::getenv("MIXT_CPU_NICE")) nice = std::atoi(env);
  if (nice > 0) setpriority(PRIO_PROCESS, pid_t(syscall(SYS_gettid)), std::min(nice, 19));
#endif
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t threads = pool().threads();
  // A few chunks per thread balance uneven work without much claiming overhead.
  int64_t chunk = std::max(grain, (n + threads * 4 - 1) / (threads * 4));
  if (threads == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  job->chunk = chunk;
  job->nchunks = (n + chunk - 1) / chunk;
  pool().run(job);
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace mixt::cpu
