// Backend pieces shared by CPU and CUDA: accounting, op tags, host staging without CUDA.
#include <cstdlib>
#include <unordered_map>

#include "../kernels/runtime.h"

namespace mixt {

void* Backend::allocate(size_t bytes) {
  void* p = nullptr;
  if (bytes) {
    budget().reserve(bytes, "a tensor");
    try {
      p = raw_alloc(bytes);
    } catch (...) {
      budget().give_back(bytes);
      throw;
    }
    if (!p) {
      budget().give_back(bytes);
      throw Error(device_ < 0 ? "ERR_OOM" : "ERR_CUDA_OOM",
                  "out of memory on " + name() + " allocating " + std::to_string(bytes) + " bytes");
    }
  }
  std::lock_guard<std::mutex> g(stats_mu_);
  stats_.bytes += int64_t(bytes);
  stats_.allocations++;
  if (stats_.bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.bytes;
  return p;
}

void Backend::release(void* ptr, size_t bytes) {
  {
    std::lock_guard<std::mutex> g(stats_mu_);
    stats_.bytes -= int64_t(bytes);
  }
  if (bytes) budget().give_back(bytes);
  if (ptr) raw_free_ordered(ptr);
}

const char* device_fault_name(int fault) {
  switch (fault) {
    case kFaultIndexRange: return "an index is out of range";
    case kFaultNonFinite: return "a value is NaN or infinite";
    case kFaultBadOffsets: return "group offsets are not increasing within bounds";
  }
  return "bad data";
}

namespace {
std::mutex tag_mu;
std::vector<std::string>& tag_names() {
  static auto* v = new std::vector<std::string>{"?"};
  return *v;
}
std::unordered_map<std::string, int>& tag_ids() {
  static auto* m = new std::unordered_map<std::string, int>();
  return *m;
}
}  // namespace

int op_tag_of(const char* op) {
  std::lock_guard<std::mutex> g(tag_mu);
  auto& ids = tag_ids();
  auto it = ids.find(op);
  if (it != ids.end()) return it->second;
  int id = int(tag_names().size());
  tag_names().push_back(op);
  ids.emplace(op, id);
  return id;
}

const char* op_name_of(int tag) {
  std::lock_guard<std::mutex> g(tag_mu);
  auto& names = tag_names();
  return tag > 0 && tag < int(names.size()) ? names[tag].c_str() : "?";
}

#ifndef MIXT_WITH_CUDA
HostStage::~HostStage() { std::free(ptr); }
std::shared_ptr<HostStage> make_host_stage(size_t bytes, bool) {
  auto s = std::make_shared<HostStage>();
  s->hold.take(host_budget(), bytes, "a host staging buffer");
  s->bytes = bytes;
  s->ptr = bytes ? std::malloc(bytes) : nullptr;
  if (bytes && !s->ptr) throw Error("ERR_OOM", "out of host memory staging " + std::to_string(bytes) + " bytes");
  return s;
}
#endif

}  // namespace mixt
