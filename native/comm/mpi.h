// MPI loaded at run time (dlopen), so the addon loads where no MPI is installed. Only Open MPI's ABI
// is supported: its handles (MPI_Comm, MPI_Datatype, MPI_Op, MPI_Errhandler) are pointers to exported
// predefined objects (ompi_mpi_comm_world, ompi_mpi_float, ...), taken here with dlsym. MPICH and its
// derivatives use integer handles and export none of these symbols: loading one fails with
// ERR_COMM_UNAVAILABLE saying so. Every call must come from the communication thread (comm_thread.h):
// MPI is initialised there with MPI_THREAD_FUNNELED.
#pragma once

#include <cstdint>
#include <string>

#include "../kernels/common.h"

namespace mixt::mpi {

struct World {
  int rank = 0;
  int size = 1;
  std::string library;  // the file dlopen loaded
};

// Loads the library (`library`, else libmpi.so.40, else libmpi.so) and initialises MPI with errors
// returned, not aborting. Idempotent. Throws ERR_COMM_UNAVAILABLE naming the library and why.
World init(const std::string& library);
bool initialised();
// In place, summed over all ranks: f32 or f64 elements.
void all_reduce_sum(void* data, int64_t count, DType dtype);
void broadcast(void* data, int64_t bytes, int root);
void barrier();
void finalize();

}  // namespace mixt::mpi
