// CUDA backend runtime: one non-blocking stream per device and environment, memory from the
// stream-ordered pool (cudaMallocAsync), page-locked staging for host copies, and a mapped word
// that kernels set when they find bad data. Host code only (compiled by the C++ compiler).
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <map>

#include "../kernels/runtime.h"
#include "device_info.h"

namespace mixt {

[[noreturn]] void throw_cuda(cudaError_t e, const std::string& where) {
  std::string code = e == cudaErrorMemoryAllocation ? "ERR_CUDA_OOM" : "ERR_CUDA";
  throw Error(code, where + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}
#define CUDA_OK(call, where)                  \
  do {                                        \
    cudaError_t e_ = (call);                  \
    if (e_ != cudaSuccess) throw_cuda(e_, where); \
  } while (0)

// ---- page-locked staging pool -------------------------------------------------------------
namespace {
std::mutex stage_mu;
std::multimap<size_t, void*>& stage_free() {
  static auto* m = new std::multimap<size_t, void*>();
  return *m;
}
size_t stage_cached = 0;
constexpr size_t kStageCacheCap = size_t(512) << 20;

size_t stage_class(size_t bytes) {
  size_t c = 4096;
  while (c < bytes) c <<= 1;
  return c;
}
}  // namespace

HostStage::~HostStage() {
  if (!ptr) return;
  if (!pinned) {
    std::free(ptr);
    return;
  }
  // May run inside a stream callback, where CUDA calls are forbidden: return to the pool only.
  std::lock_guard<std::mutex> g(stage_mu);
  stage_free().emplace(bytes, ptr);
  stage_cached += bytes;
}

std::shared_ptr<HostStage> make_host_stage(size_t bytes, bool pinned) {
  auto s = std::make_shared<HostStage>();
  if (!bytes) return s;
  s->hold.take(host_budget(), bytes, "a host staging buffer");
  if (pinned) {
    size_t cls = stage_class(bytes);
    std::vector<void*> trim;
    {
      std::lock_guard<std::mutex> g(stage_mu);
      auto it = stage_free().find(cls);
      if (it != stage_free().end()) {
        s->ptr = it->second;
        stage_free().erase(it);
        stage_cached -= cls;
      }
      while (stage_cached > kStageCacheCap && !stage_free().empty()) {
        auto big = std::prev(stage_free().end());
        stage_cached -= big->first;
        trim.push_back(big->second);
        stage_free().erase(big);
      }
    }
    for (void* p : trim) cudaFreeHost(p);
    if (!s->ptr && cudaMallocHost(&s->ptr, cls) != cudaSuccess) {
      cudaGetLastError();
      s->ptr = nullptr;
    }
    if (s->ptr) {
      s->bytes = cls;
      s->pinned = true;
      return s;
    }
  }
  s->ptr = std::malloc(bytes);
  s->bytes = bytes;
  if (!s->ptr) throw Error("ERR_OOM", "out of host memory staging " + std::to_string(bytes) + " bytes");
  return s;
}

// ---- backend ------------------------------------------------------------------------------
namespace {

class CudaBackend;

class CudaFence : public Fence {
 public:
  CudaFence(std::shared_ptr<CudaBackend> b, cudaEvent_t ev) : backend_(std::move(b)), event_(ev) {}
  ~CudaFence() override { cudaEventDestroy(event_); }
  void wait() override;

 private:
  std::shared_ptr<CudaBackend> backend_;
  cudaEvent_t event_;
};

// Keeps a shared object alive until the stream reaches this point.
template <typename T>
void hold_until_done(cudaStream_t stream, std::shared_ptr<T> obj) {
  auto* holder = new std::shared_ptr<T>(std::move(obj));
  cudaError_t e = cudaLaunchHostFunc(stream, [](void* p) { delete static_cast<std::shared_ptr<T>*>(p); }, holder);
  if (e != cudaSuccess) {
    delete holder;
    throw_cuda(e, "cudaLaunchHostFunc");
  }
}

class CudaMark : public TimeMark {
 public:
  explicit CudaMark(cudaEvent_t e) : event(e) {}
  ~CudaMark() override { cudaEventDestroy(event); }
  double elapsed_ms(TimeMark& earlier) override {
    auto& e = dynamic_cast<CudaMark&>(earlier);
    cudaError_t err = cudaEventSynchronize(event);
    if (err != cudaSuccess) throw_cuda(err, "elapsed");
    float ms = 0;
    err = cudaEventElapsedTime(&ms, e.event, event);
    if (err != cudaSuccess) throw_cuda(err, "cudaEventElapsedTime");
    return ms;
  }
  cudaEvent_t event;
};

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int device) : Backend(device) {
    CUDA_OK(cudaSetDevice(device), "cudaSetDevice");
    CUDA_OK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    // Keep freed pool memory for reuse instead of returning it to the driver at every sync.
    cudaMemPool_t pool;
    CUDA_OK(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
    uint64_t threshold = UINT64_MAX;
    CUDA_OK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold), "cudaMemPoolSetAttribute");
    CUDA_OK(cudaHostAlloc(reinterpret_cast<void**>(&flag_host_), sizeof(int) * 2, cudaHostAllocMapped),
            "cudaHostAlloc(error flag)");
    flag_host_[0] = flag_host_[1] = 0;
    CUDA_OK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&flag_dev_), flag_host_, 0), "cudaHostGetDevicePointer");
  }
  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
    cudaFreeHost(flag_host_);
  }

  void submit(const char* op, std::function<void(const Stream&)> fn) override {
    CUDA_OK(cudaSetDevice(device_), op);
    Stream s;
    s.device = device_;
    s.cuda_stream = stream_;
    s.error_flag = flag_dev_;
    s.op_tag = op_tag_of(op);
    try {
      fn(s);
    } catch (Error& e) {
      throw Error(e.code, std::string(op) + ": " + e.what());
    }
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) throw_cuda(e, op);
  }

  std::shared_ptr<Fence> fence() override {
    CUDA_OK(cudaSetDevice(device_), "fence");
    cudaEvent_t ev;
    CUDA_OK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreate");
    cudaError_t e = cudaEventRecord(ev, stream_);
    if (e != cudaSuccess) {
      cudaEventDestroy(ev);
      throw_cuda(e, "cudaEventRecord");
    }
    return std::make_shared<CudaFence>(std::static_pointer_cast<CudaBackend>(shared_from_this()), ev);
  }

  std::shared_ptr<TimeMark> mark() override {
    CUDA_OK(cudaSetDevice(device_), "mark");
    cudaEvent_t ev;
    CUDA_OK(cudaEventCreate(&ev), "cudaEventCreate");
    auto m = std::make_shared<CudaMark>(ev);
    CUDA_OK(cudaEventRecord(ev, stream_), "cudaEventRecord");
    return m;
  }

  void upload_fresh(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
    auto stage = make_host_stage(bytes, true);
    std::memcpy(stage->ptr, src, bytes);
    stage_in(dst, stage, bytes, nullptr);
  }

  std::shared_ptr<Fence> stage_out(const void* src, std::shared_ptr<HostStage> stage, size_t bytes) override {
    CUDA_OK(cudaSetDevice(device_), "copy_out");
    if (bytes) {
      CUDA_OK(cudaMemcpyAsync(stage->ptr, src, bytes, cudaMemcpyDeviceToHost, stream_), "copy_out");
      hold_until_done(stream_, stage);
    }
    return fence();
  }

  void stage_in(void* dst, std::shared_ptr<HostStage> stage, size_t bytes, std::shared_ptr<Fence> after) override {
    CUDA_OK(cudaSetDevice(device_), "copy_in");
    if (after) {
      // The stream waits on host work (another backend's queue) before the copy may start.
      struct Wait {
        std::shared_ptr<Fence> fence;
        CudaBackend* self;
      };
      auto* w = new Wait{std::move(after), this};
      CUDA_OK(cudaLaunchHostFunc(
                  stream_,
                  [](void* p) {
                    auto* w = static_cast<Wait*>(p);
                    try {
                      w->fence->wait();
                    } catch (const Error& e) {
                      w->self->record_host_error(e.code, e.what());
                    }
                    delete w;
                  },
                  w),
              "copy_in");
    }
    if (bytes) {
      CUDA_OK(cudaMemcpyAsync(dst, stage->ptr, bytes, cudaMemcpyHostToDevice, stream_), "copy_in");
      hold_until_done(stream_, stage);
    }
  }

  void record_host_error(const std::string& code, const std::string& msg) {
    std::lock_guard<std::mutex> g(err_mu_);
    if (err_code_.empty()) {
      err_code_ = code;
      err_msg_ = msg;
    }
  }

  // After an event completed: report an error a callback or a kernel recorded since the last report.
  void check_after_wait() {
    {
      std::lock_guard<std::mutex> g(err_mu_);
      if (!err_code_.empty()) {
        Error e(err_code_, err_msg_);
        err_code_.clear();
        throw e;
      }
    }
    volatile int* flag = flag_host_;
    int tag = flag[0], fault = flag[1];
    if (tag) {
      flag[0] = flag[1] = 0;
      throw Error("ERR_BAD_DATA", std::string(op_name_of(tag)) + ": " + device_fault_name(fault) +
                                      " (found on " + name() + ")");
    }
  }

 protected:
  void* raw_alloc(size_t bytes) override {
    cudaSetDevice(device_);
    void* p = nullptr;
    cudaError_t e = cudaMallocAsync(&p, bytes, stream_);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return nullptr;
    }
    if (e != cudaSuccess) throw_cuda(e, "cudaMallocAsync");
    return p;
  }
  void raw_free_ordered(void* ptr) override {
    cudaSetDevice(device_);
    cudaFreeAsync(ptr, stream_);
  }

 private:
  cudaStream_t stream_ = nullptr;
  int* flag_host_ = nullptr;
  int* flag_dev_ = nullptr;
  std::mutex err_mu_;
  std::string err_code_, err_msg_;
};

void CudaFence::wait() {
  cudaError_t e = cudaEventSynchronize(event_);
  if (e != cudaSuccess) throw_cuda(e, "while waiting for " + backend_->name());
  backend_->check_after_wait();
}

}  // namespace

std::shared_ptr<Backend> make_cuda_backend(int device) { return std::make_shared<CudaBackend>(device); }

// ---- device discovery ---------------------------------------------------------------------
CudaStatus cuda_status() {
  CudaStatus st;
  st.compiled = true;
  st.runtime_version = CUDART_VERSION;
  // Ask the dynamic loader first so "no driver" is told apart from "driver too old".
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    st.reason = "no NVIDIA driver: libcuda.so.1 could not be loaded";
    return st;
  }
  dlclose(lib);
  int drv = 0;
  cudaDriverGetVersion(&drv);
  st.driver_version = drv;
  if (drv && drv < CUDART_VERSION) {
    st.reason = "the NVIDIA driver supports CUDA " + std::to_string(drv / 1000) + "." + std::to_string(drv % 1000 / 10) +
                " but this build needs " + std::to_string(CUDART_VERSION / 1000) + "." +
                std::to_string(CUDART_VERSION % 1000 / 10) + " (driver too old)";
    return st;
  }
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    st.reason = e == cudaErrorNoDevice ? std::string("no CUDA device found")
                : e == cudaErrorInsufficientDriver ? std::string("the NVIDIA driver is too old for this build")
                                                   : std::string("CUDA unusable: ") + cudaGetErrorString(e);
    return st;
  }
  if (n == 0) {
    st.reason = "no CUDA device found";
    return st;
  }
  for (int i = 0; i < n; i++) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    CudaDeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.total_memory = p.totalGlobalMem;
    d.major = p.major;
    d.minor = p.minor;
    d.multiprocessors = p.multiProcessorCount;
    d.l2_bytes = p.l2CacheSize;
    d.smem_optin = p.sharedMemPerBlockOptin;
    st.devices.push_back(d);
  }
  st.usable = !st.devices.empty();
  if (!st.usable) st.reason = "no CUDA device could be queried";
  return st;
}

bool cuda_device_memory(int device, size_t* free_b, size_t* total_b) {
  if (cudaSetDevice(device) != cudaSuccess) return false;
  return cudaMemGetInfo(free_b, total_b) == cudaSuccess;
}

}  // namespace mixt
