// The communication thread: one per process (MPI is process-wide), running collective jobs in the
// order they were pushed, beside the compute queues, so a bucket of gradients is all-reduced while
// the backward of earlier layers still runs. Each rank pushes the same jobs in the same order (they
// are pushed from stream order). A failed job fails every later one (the ranks are out of step);
// a wait past its timeout throws ERR_COMM_TIMEOUT (a peer died or stopped) instead of hanging.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "../kernels/common.h"

namespace mixt {

class CommThread {
 public:
  static CommThread& get();
  // Queues job; returns its ticket (1, 2, ...).
  uint64_t push(std::string what, std::function<void()> job);
  // Blocks until the job `ticket` and all before it ran; throws the first error of a job up to
  // it, or ERR_COMM_TIMEOUT when that takes longer than timeout_s (<= 0: no limit).
  void wait(uint64_t ticket, double timeout_s);
  uint64_t last_ticket();
  // Describes this process in error messages ("rank 1 of 2").
  void set_identity(std::string who);

 private:
  CommThread();
  void run();

  struct Item {
    uint64_t ticket;
    std::string what;
    std::function<void()> job;
  };
  std::mutex mu_;
  std::condition_variable wake_, done_cv_;
  std::deque<Item> queue_;
  uint64_t pushed_ = 0, done_ = 0;
  std::string running_;  // the job in progress, for the timeout message
  std::string error_code_, error_message_;
  std::string who_ = "this process";
  std::thread thread_;
};

}  // namespace mixt
