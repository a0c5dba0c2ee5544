// Entry points for the environment's lifetime and memory budgets.
#include "op_args.h"

namespace mixt {
namespace {

MemoryBudget& budget_arg(const Napi::CallbackInfo& info, size_t i) {
  int64_t d = int_arg(info, i, "device");
  if (d < -1 || d > 64) throw Error("ERR_INVALID_ARG", "device: expected -1 (cpu) or a CUDA ordinal");
  return d < 0 ? host_budget() : device_budget(int(d));
}

// shutdown(): the process is exiting; queued work nobody can read any more is dropped.
MIXT_ENTRY(shutdown) {
  Context::of(info.Env()).shutdown();
  return info.Env().Undefined();
}

// memoryLimit(device): { limit, used } in bytes for the process (all threads); limit 0 = none.
MIXT_ENTRY(memory_limit) {
  MemoryBudget& b = budget_arg(info, 0);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("limit", double(b.limit()));
  o.Set("used", double(b.used()));
  return o;
}

// setMemoryLimit(device, bytes): 0 removes the limit.
MIXT_ENTRY(set_memory_limit) {
  MemoryBudget& b = budget_arg(info, 0);
  double bytes = number_arg(info, 1, "bytes");
  if (!(bytes >= 0) || bytes > 9.2e18) throw Error("ERR_INVALID_ARG", "bytes: expected a non-negative number");
  b.set_limit(int64_t(bytes));
  return info.Env().Undefined();
}

}  // namespace

MIXT_EXPORT("shutdown", shutdown);
MIXT_EXPORT("memoryLimit", memory_limit);
MIXT_EXPORT("setMemoryLimit", set_memory_limit);

}  // namespace mixt
