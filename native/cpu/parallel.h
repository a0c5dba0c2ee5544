// A process-wide thread pool for CPU kernels. The calling thread takes part in the work, so a
// parallel_for from any queue thread (one per Node environment) makes progress even when all
// pool threads are busy with another environment's job.
#pragma once

#include <cstdint>
#include <functional>

namespace mixt::cpu {

int num_threads();

// Lowers the calling compute thread's priority (Linux per-thread nice, MIXT_CPU_NICE, default 5):
// the JS thread then wins the CPU whenever it has work, so the event loop stays responsive while
// every idle cycle still goes to compute.
void lower_thread_priority();

// Runs fn(begin, end) over [0, n) in chunks of at least `grain` items, in parallel; returns when all
// chunks are done. Exceptions thrown by fn are rethrown here (the first one).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace mixt::cpu
