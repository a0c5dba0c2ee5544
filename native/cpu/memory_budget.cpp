#include "../kernels/memory_budget.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <vector>

#include "../kernels/common.h"

namespace mixt {
namespace {

std::mutex budget_mu;

std::string human_bytes(int64_t bytes) {
  char buf[64];
  if (bytes >= (int64_t(1) << 30)) snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(int64_t(1) << 30));
  else snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / double(int64_t(1) << 20));
  return buf;
}

int64_t physical_memory() {
  int64_t phys = int64_t(sysconf(_SC_PHYS_PAGES)) * int64_t(sysconf(_SC_PAGE_SIZE));
  // A container's cgroup (v2, then v1) may allow less than the machine has.
  for (const char* f : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(f);
    std::string s;
    if (in >> s && s != "max") {
      int64_t v = std::atoll(s.c_str());
      if (v > 0 && (phys <= 0 || v < phys)) phys = v;
    }
  }
  return phys > 0 ? phys : 0;
}

}  // namespace

int64_t parse_byte_size(const char* text) {
  if (!text || !*text) return -1;
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (end == text || !(v >= 0)) return -1;
  double scale = 1;
  switch (*end) {
    case 'k': case 'K': scale = 1024.0; end++; break;
    case 'm': case 'M': scale = 1024.0 * 1024; end++; break;
    case 'g': case 'G': scale = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': scale = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
  }
  if (*end == 'i' || *end == 'I') end++;
  if (*end == 'b' || *end == 'B') end++;
  if (*end) return -1;
  double bytes = v * scale;
  return bytes > 9.2e18 ? -1 : int64_t(bytes);
}

MemoryBudget::MemoryBudget(std::string name, const char* code, const char* env_var, int64_t default_limit)
    : name_(std::move(name)), code_(code), limit_(default_limit) {
  if (const char* env = std::getenv(env_var)) {
    int64_t v = parse_byte_size(env);
    if (v >= 0) limit_ = v;
  }
}

void MemoryBudget::reserve(size_t bytes, const std::string& what) {
  std::lock_guard<std::mutex> g(budget_mu);
  if (limit_ > 0 && (bytes > size_t(limit_) || used_ > limit_ - int64_t(bytes))) {
    throw Error(code_, "out of memory on " + name_ + ": " + what + " needs " + std::to_string(bytes) + " bytes (" +
                           human_bytes(int64_t(bytes)) + ") but " + human_bytes(used_) + " of the " + human_bytes(limit_) +
                           " budget is in use (set the limit with mixt.setMemoryLimit or " +
                           (name_ == "cpu" ? "MIXT_HOST_MEMORY_LIMIT" : "MIXT_CUDA_MEMORY_LIMIT") + ")");
  }
  used_ += int64_t(bytes);
}

void MemoryBudget::give_back(size_t bytes) {
  std::lock_guard<std::mutex> g(budget_mu);
  used_ -= int64_t(bytes);
}

int64_t MemoryBudget::used() const {
  std::lock_guard<std::mutex> g(budget_mu);
  return used_;
}
int64_t MemoryBudget::limit() const {
  std::lock_guard<std::mutex> g(budget_mu);
  return limit_;
}
void MemoryBudget::set_limit(int64_t bytes) {
  std::lock_guard<std::mutex> g(budget_mu);
  limit_ = bytes > 0 ? bytes : 0;
}

MemoryBudget& host_budget() {
  // Leaked on purpose: storages freed by detached threads may outlive static destruction.
  static auto* b = new MemoryBudget("cpu", "ERR_OOM", "MIXT_HOST_MEMORY_LIMIT", physical_memory() / 10 * 8);
  return *b;
}

MemoryBudget& device_budget(int device) {
  static auto* budgets = new std::vector<std::unique_ptr<MemoryBudget>>();
  std::lock_guard<std::mutex> g(budget_mu);
  if (size_t(device) >= budgets->size()) budgets->resize(device + 1);
  auto& b = (*budgets)[device];
  if (!b) b = std::make_unique<MemoryBudget>("cuda:" + std::to_string(device), "ERR_CUDA_OOM", "MIXT_CUDA_MEMORY_LIMIT", 0);
  return *b;
}

}  // namespace mixt
