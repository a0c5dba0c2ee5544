// The runtime interface both backends implement: memory, an ordered stream of work, fences and reads.
// CPU: a worker thread runs closures in order (kernels fan out on a thread pool).
// CUDA: one non-blocking stream per device, memory from the stream-ordered pool.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"
#include "memory_budget.h"

namespace mixt {

// What a kernel receives: where it runs and how to report data errors found while running.
struct Stream {
  int device = -1;              // -1: CPU, else CUDA device ordinal
  void* cuda_stream = nullptr;  // cudaStream_t
  int* error_flag = nullptr;    // CUDA: device-visible word a kernel sets to report bad data
  int op_tag = 0;               // names the running op in such reports
  bool is_cpu() const { return device < 0; }
};

// Codes a CUDA kernel writes (with the op tag) into the error flag.
enum DeviceFault : int { kFaultIndexRange = 1, kFaultNonFinite = 2, kFaultBadOffsets = 3 };
const char* device_fault_name(int fault);

struct MemoryStats {
  int64_t tensors = 0;     // live tensor handles
  int64_t bytes = 0;       // live storage bytes
  int64_t peak_bytes = 0;  // high-water mark of bytes
  int64_t allocations = 0; // storages allocated since start
};

// A point in a stream's order that another thread can wait for.
class Fence {
 public:
  virtual ~Fence() = default;
  // Blocks (never on the JS thread) until the work before the fence is done; throws the stream's
  // pending error, if any, as mixt::Error.
  virtual void wait() = 0;
};

// A point in a stream's order with the time the device reached it (CUDA: an event with timing;
// CPU: the queue's clock). elapsed_ms() blocks until both marks were reached.
class TimeMark {
 public:
  virtual ~TimeMark() = default;
  virtual double elapsed_ms(TimeMark& earlier) = 0;
};

// Bytes reserved from a budget, given back when the holder dies (non-copyable).
class BudgetHold {
 public:
  BudgetHold() = default;
  BudgetHold(const BudgetHold&) = delete;
  BudgetHold& operator=(const BudgetHold&) = delete;
  ~BudgetHold() {
    if (budget_) budget_->give_back(bytes_);
  }
  void take(MemoryBudget& budget, size_t bytes, const std::string& what) {
    budget.reserve(bytes, what);
    budget_ = &budget;
    bytes_ = bytes;
  }

 private:
  MemoryBudget* budget_ = nullptr;
  size_t bytes_ = 0;
};

// Host memory that copies between backends pass through (page-locked when CUDA is involved, so
// copies are truly asynchronous). Freed back to a pool, never by a CUDA call inside a stream callback.
// Counted in the host budget while it lives.
struct HostStage {
  void* ptr = nullptr;
  size_t bytes = 0;
  bool pinned = false;
  BudgetHold hold;
  ~HostStage();
};
std::shared_ptr<HostStage> make_host_stage(size_t bytes, bool pinned);

class Backend : public std::enable_shared_from_this<Backend> {
 public:
  explicit Backend(int device) : device_(device) {}
  virtual ~Backend() = default;
  int device() const { return device_; }
  std::string name() const { return device_ < 0 ? "cpu" : "cuda:" + std::to_string(device_); }

  // Allocation happens on the JS thread, at enqueue time; freeing is ordered after queued work.
  // Every storage is reserved from this device's budget first (host_budget() for the CPU).
  void* allocate(size_t bytes);
  MemoryBudget& budget() { return device_ < 0 ? host_budget() : device_budget(device_); }
  void release(void* ptr, size_t bytes);

  // Runs fn in stream order. CPU: queued to the worker thread (errors surface at the next fence).
  // CUDA: launched now on the stream (launch errors throw here).
  virtual void submit(const char* op, std::function<void(const Stream&)> fn) = 0;
  virtual std::shared_ptr<Fence> fence() = 0;
  virtual std::shared_ptr<TimeMark> mark() = 0;
  // The environment is going away (worker terminated, process exiting): work queued and not yet
  // started is dropped (frees still run) and waits on it report ERR_CANCELLED, so teardown never
  // waits for results nobody can read. CUDA work already launched runs to its end.
  virtual void cancel_pending() {}

  // Copies host bytes into memory that no queued work uses yet (a fresh allocation).
  virtual void upload_fresh(void* dst, const void* src, size_t bytes) = 0;
  // Stream-ordered copy of device bytes into host staging memory; the fence marks its completion.
  virtual std::shared_ptr<Fence> stage_out(const void* src, std::shared_ptr<HostStage> stage, size_t bytes) = 0;
  // Stream-ordered: waits for `after` (may be null), then copies staging memory into device bytes.
  virtual void stage_in(void* dst, std::shared_ptr<HostStage> stage, size_t bytes, std::shared_ptr<Fence> after) = 0;

  MemoryStats stats() {
    std::lock_guard<std::mutex> g(stats_mu_);
    return stats_;
  }
  void count_handle(int delta) {
    std::lock_guard<std::mutex> g(stats_mu_);
    stats_.tensors += delta;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> g(stats_mu_);
    stats_.peak_bytes = stats_.bytes;
  }

 protected:
  virtual void* raw_alloc(size_t bytes) = 0;
  virtual void raw_free_ordered(void* ptr) = 0;
  int device_;
  std::mutex stats_mu_;
  MemoryStats stats_;
};

std::shared_ptr<Backend> make_cpu_backend();
#ifdef MIXT_WITH_CUDA
std::shared_ptr<Backend> make_cuda_backend(int device);
#endif

// Interns op names so CUDA kernels can report which op found bad data.
int op_tag_of(const char* op);
const char* op_name_of(int tag);

}  // namespace mixt
