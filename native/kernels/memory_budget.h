// Process-wide memory budgets: every storage and host staging buffer is reserved here before it is
// allocated, so an allocation past the limit is a clean ERR_OOM / ERR_CUDA_OOM instead of an
// overcommitted reservation that the kernel later kills. Shared by all worker threads of a process
// (they share its memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mixt {

class MemoryBudget {
 public:
  // Throws mixt::Error (ERR_OOM for the host, ERR_CUDA_OOM for a device) when `bytes` more would
  // pass the limit; `what` names the allocation in the message.
  void reserve(size_t bytes, const std::string& what);
  void give_back(size_t bytes);
  int64_t used() const;
  int64_t limit() const;           // bytes; 0 means no limit
  void set_limit(int64_t bytes);   // 0 removes the limit
  const std::string& name() const { return name_; }

  MemoryBudget(std::string name, const char* code, const char* env_var, int64_t default_limit);

 private:
  std::string name_;
  const char* code_;
  int64_t used_ = 0;
  int64_t limit_ = 0;
};

// The host budget: MIXT_HOST_MEMORY_LIMIT (bytes, or with a K/M/G/T suffix) or, by default, 80% of the
// physical memory (or of the cgroup's limit when that is smaller).
MemoryBudget& host_budget();
// A CUDA device's budget: MIXT_CUDA_MEMORY_LIMIT, else none beyond what the device has.
MemoryBudget& device_budget(int device);
// Parses "123", "8G", "512M"...; returns -1 for text that is not a size.
int64_t parse_byte_size(const char* text);

}  // namespace mixt
