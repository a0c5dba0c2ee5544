#include "../comm/nccl.h"
#include "../comm/runtime_library.h"

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace mixt::nccl {
namespace {

// The few NCCL declarations used (nccl.h, stable since NCCL 2.0; bf16 since 2.10).
using Result = int;
using Comm = void*;
struct UniqueId {
  char internal[kUniqueIdBytes];
};
constexpr Result kSuccess = 0;
constexpr int kFloat32 = 7, kFloat64 = 8, kBfloat16 = 9, kUint8 = 1;
constexpr int kSum = 0;

RuntimeLibrary lib("NCCL", "install NCCL 2.10 or later, e.g. the libnccl2 package, or set MIXT_NCCL_LIBRARY to its libnccl.so.2");

struct Api {
  Result (*GetUniqueId)(UniqueId*);
  Result (*CommInitRank)(Comm*, int, UniqueId, int);
  Result (*AllReduce)(const void*, void*, size_t, int, int, Comm, cudaStream_t);
  Result (*Broadcast)(const void*, void*, size_t, int, int, Comm, cudaStream_t);
  Result (*GroupStart)();
  Result (*GroupEnd)();
  const char* (*GetErrorString)(Result);
};

Api api;
Comm comm = nullptr;
int comm_device = -1;
std::mutex mu;

void load() {
  if (lib.is_open()) return;
  const char* env = std::getenv("MIXT_NCCL_LIBRARY");
  lib.open({env && *env ? env : "libnccl.so.2"}, RTLD_NOW | RTLD_LOCAL);
  try {
    lib.bind(api.GetUniqueId, "ncclGetUniqueId");
    lib.bind(api.CommInitRank, "ncclCommInitRank");
    lib.bind(api.AllReduce, "ncclAllReduce");
    lib.bind(api.Broadcast, "ncclBroadcast");
    lib.bind(api.GroupStart, "ncclGroupStart");
    lib.bind(api.GroupEnd, "ncclGroupEnd");
    lib.bind(api.GetErrorString, "ncclGetErrorString");
  } catch (...) {
    lib.close();
    throw;
  }
}

void check(Result rc, const char* what) {
  if (rc != kSuccess) throw Error("ERR_COMM", std::string(what) + " failed: " + api.GetErrorString(rc));
}

int dtype_code(DType d) {
  switch (d) {
    case DType::F32: return kFloat32;
    case DType::BF16: return kBfloat16;
    default: throw Error("ERR_INVALID_ARG", std::string("NCCL all-reduce: dtype ") + dtype_name(d) + ", expected f32 or bf16");
  }
}

void want_ready(const char* what) {
  if (!comm) throw Error("ERR_COMM", std::string(what) + ": NCCL is not initialised");
}

}  // namespace

std::vector<uint8_t> unique_id() {
  std::lock_guard<std::mutex> g(mu);
  load();
  UniqueId id;
  check(api.GetUniqueId(&id), "ncclGetUniqueId");
  return std::vector<uint8_t>(id.internal, id.internal + kUniqueIdBytes);
}

std::string init(int device, int rank, int size, const std::vector<uint8_t>& id) {
  std::lock_guard<std::mutex> g(mu);
  load();
  if (comm) {
    if (comm_device != device) throw Error("ERR_COMM", "NCCL is already initialised on cuda:" + std::to_string(comm_device));
    return lib.file();
  }
  if (id.size() != kUniqueIdBytes) throw Error("ERR_INVALID_ARG", "NCCL init: the bootstrap id must hold 128 bytes");
  cudaError_t ce = cudaSetDevice(device);
  if (ce != cudaSuccess) throw Error("ERR_CUDA", std::string("NCCL init: cudaSetDevice: ") + cudaGetErrorString(ce));
  UniqueId uid;
  std::memcpy(uid.internal, id.data(), kUniqueIdBytes);
  check(api.CommInitRank(&comm, size, uid, rank), "ncclCommInitRank");
  comm_device = device;
  return lib.file();
}

bool initialised() { return comm != nullptr; }

void all_reduce_sum(const std::vector<TensorView>& bufs, void* stream) {
  want_ready("all_reduce_sum");
  std::vector<int> codes;  // before the group opens: a throw inside it would leave the group open
  for (const TensorView& b : bufs) codes.push_back(dtype_code(b.dtype));
  check(api.GroupStart(), "ncclGroupStart");
  for (size_t i = 0; i < bufs.size(); i++) {
    const TensorView& b = bufs[i];
    Result rc = api.AllReduce(b.data, b.data, size_t(b.numel()), codes[i], kSum, comm, static_cast<cudaStream_t>(stream));
    if (rc != kSuccess) {
      api.GroupEnd();
      check(rc, "ncclAllReduce");
    }
  }
  check(api.GroupEnd(), "ncclGroupEnd");
}

void broadcast(const std::vector<TensorView>& bufs, int root, void* stream) {
  want_ready("broadcast");
  check(api.GroupStart(), "ncclGroupStart");
  for (const TensorView& b : bufs) {
    Result rc = api.Broadcast(b.data, b.data, b.nbytes(), kUint8, root, comm, static_cast<cudaStream_t>(stream));
    if (rc != kSuccess) {
      api.GroupEnd();
      check(rc, "ncclBroadcast");
    }
  }
  check(api.GroupEnd(), "ncclGroupEnd");
}

}  // namespace mixt::nccl
