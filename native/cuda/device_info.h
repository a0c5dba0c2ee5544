// What the CUDA runtime reports about the driver and devices (built with CUDA only).
#pragma once

#include <string>
#include <vector>

namespace mixt {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  size_t total_memory = 0;
  int major = 0, minor = 0;
  int multiprocessors = 0;
  int l2_bytes = 0;
  size_t smem_optin = 0;
};

struct CudaStatus {
  bool compiled = false;
  bool usable = false;
  std::string reason;  // why unusable
  int driver_version = 0, runtime_version = 0;
  std::vector<CudaDeviceInfo> devices;
};

CudaStatus cuda_status();
bool cuda_device_memory(int device, size_t* free_b, size_t* total_b);

}  // namespace mixt
