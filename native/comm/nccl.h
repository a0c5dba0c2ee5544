// NCCL loaded at run time (dlopen of MIXT_NCCL_LIBRARY, else libnccl.so.2), so the addon loads where
// NCCL is absent. Compiled into CUDA builds only (native/cuda/nccl.cpp). Collectives are enqueued on
// the caller's CUDA stream (stream-ordered after the backward that made the gradients).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../kernels/common.h"

namespace mixt::nccl {

constexpr size_t kUniqueIdBytes = 128;

// A fresh bootstrap id (rank 0 makes it; the launcher's MPI broadcasts it to the others).
std::vector<uint8_t> unique_id();
// Joins the communicator of `size` ranks on CUDA device `device`; blocks until all ranks joined.
// Returns the library loaded. Throws ERR_COMM_UNAVAILABLE naming the library and why.
std::string init(int device, int rank, int size, const std::vector<uint8_t>& id);
bool initialised();
// Sums each buffer over the ranks in place, as one group (NCCL fuses them), on `stream`.
void all_reduce_sum(const std::vector<TensorView>& bufs, void* stream);
void broadcast(const std::vector<TensorView>& bufs, int root, void* stream);

}  // namespace mixt::nccl
