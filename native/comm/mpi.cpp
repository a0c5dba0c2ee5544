#include "mpi.h"

#include "runtime_library.h"

#include <mutex>
#include <vector>

namespace mixt::mpi {
namespace {

// Open MPI's handle types are opaque pointers.
using Handle = void*;
constexpr int kSuccess = 0;
constexpr int kThreadFunneled = 1;  // Open MPI: SINGLE 0, FUNNELED 1, SERIALIZED 2, MULTIPLE 3
constexpr int kMaxErrorString = 256;

RuntimeLibrary lib("MPI", "install Open MPI, e.g. `apt-get install openmpi-bin libopenmpi-dev`, or set MIXT_MPI_LIBRARY "
                                "to its libmpi.so; launch with mpirun");

struct Api {
  Handle comm_world, dt_float, dt_double, dt_byte, op_sum, errors_return;
  int (*Init_thread)(int*, char***, int, int*);
  int (*Initialized)(int*);
  int (*Finalized)(int*);
  int (*Comm_rank)(Handle, int*);
  int (*Comm_size)(Handle, int*);
  int (*Comm_set_errhandler)(Handle, Handle);
  int (*Allreduce)(const void*, void*, int, Handle, Handle, Handle);
  int (*Bcast)(void*, int, Handle, int, Handle);
  int (*Barrier)(Handle);
  int (*Finalize)();
  int (*Error_string)(int, char*, int*) = nullptr;
};

Api api;
World world;
bool ready = false;
std::mutex mu;

Handle object(const char* name) {
  return lib.symbol(name, "it is not Open MPI (MPICH and its derivatives use integer handles, an ABI this build does not support)");
}

void load(const std::string& library) {
  // RTLD_GLOBAL: Open MPI's components (dlopened by libmpi) resolve symbols of libmpi itself
  lib.open(!library.empty() ? std::vector<std::string>{library} : std::vector<std::string>{"libmpi.so.40", "libmpi.so"}, RTLD_NOW | RTLD_GLOBAL);
  api.comm_world = object("ompi_mpi_comm_world");
  api.dt_float = object("ompi_mpi_float");
  api.dt_double = object("ompi_mpi_double");
  api.dt_byte = object("ompi_mpi_byte");
  api.op_sum = object("ompi_mpi_op_sum");
  api.errors_return = object("ompi_mpi_errors_return");
  lib.bind(api.Init_thread, "MPI_Init_thread");
  lib.bind(api.Initialized, "MPI_Initialized");
  lib.bind(api.Finalized, "MPI_Finalized");
  lib.bind(api.Comm_rank, "MPI_Comm_rank");
  lib.bind(api.Comm_size, "MPI_Comm_size");
  lib.bind(api.Comm_set_errhandler, "MPI_Comm_set_errhandler");
  lib.bind(api.Allreduce, "MPI_Allreduce");
  lib.bind(api.Bcast, "MPI_Bcast");
  lib.bind(api.Barrier, "MPI_Barrier");
  lib.bind(api.Finalize, "MPI_Finalize");
  lib.bind(api.Error_string, "MPI_Error_string");
}

void check(int rc, const char* what) {
  if (rc == kSuccess) return;
  char text[kMaxErrorString] = {0};
  int len = 0;
  std::string why = api.Error_string && api.Error_string(rc, text, &len) == kSuccess ? std::string(text, len) : "error " + std::to_string(rc);
  throw Error("ERR_COMM", std::string(what) + " failed on rank " + std::to_string(world.rank) + " of " +
                              std::to_string(world.size) + ": " + why + " (a peer process may have died)");
}

void want_ready(const char* what) {
  if (!ready) throw Error("ERR_COMM", std::string(what) + ": MPI is not initialised (call init first)");
}

// MPI counts are int: large buffers go in chunks.
constexpr int64_t kChunk = int64_t(1) << 30;

}  // namespace

World init(const std::string& library) {
  std::lock_guard<std::mutex> g(mu);
  if (ready) return world;
  if (!lib.is_open()) {
    try {
      load(library);
    } catch (...) {
      lib.close();  // not usable: the next init looks again
      throw;
    }
  }
  int done = 0;
  check(api.Initialized(&done), "MPI_Initialized");
  if (!done) {
    int provided = 0;
    check(api.Init_thread(nullptr, nullptr, kThreadFunneled, &provided), "MPI_Init_thread");
  }
  check(api.Comm_set_errhandler(api.comm_world, api.errors_return), "MPI_Comm_set_errhandler");
  check(api.Comm_rank(api.comm_world, &world.rank), "MPI_Comm_rank");
  check(api.Comm_size(api.comm_world, &world.size), "MPI_Comm_size");
  world.library = lib.file();
  ready = true;
  return world;
}

bool initialised() { return ready; }

void all_reduce_sum(void* data, int64_t count, DType dtype) {
  want_ready("all_reduce_sum");
  if (dtype != DType::F32 && dtype != DType::F64)
    throw Error("ERR_INVALID_ARG", std::string("MPI all-reduce: dtype ") + dtype_name(dtype) + ", expected f32 or f64");
  size_t size = dtype_size(dtype);
  for (int64_t at = 0; at < count; at += kChunk) {
    int n = int(std::min(kChunk, count - at));
    // MPI_IN_PLACE is ((void*)1) in Open MPI
    check(api.Allreduce(reinterpret_cast<void*>(1), static_cast<char*>(data) + at * size, n,
                        dtype == DType::F32 ? api.dt_float : api.dt_double, api.op_sum, api.comm_world),
          "MPI_Allreduce");
  }
}

void broadcast(void* data, int64_t bytes, int root) {
  want_ready("broadcast");
  for (int64_t at = 0; at < bytes; at += kChunk) {
    int n = int(std::min(kChunk, bytes - at));
    check(api.Bcast(static_cast<char*>(data) + at, n, api.dt_byte, root, api.comm_world), "MPI_Bcast");
  }
}

void barrier() {
  want_ready("barrier");
  check(api.Barrier(api.comm_world), "MPI_Barrier");
}

void finalize() {
  std::lock_guard<std::mutex> g(mu);
  if (!ready) return;
  int done = 0;
  api.Finalized(&done);
  if (!done) check(api.Finalize(), "MPI_Finalize");
  ready = false;
}

}  // namespace mixt::mpi
