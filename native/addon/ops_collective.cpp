// Entry points: collectives across processes (data-parallel training). MPI for CPU tensors, NCCL
// for CUDA tensors, both loaded at run time (native/comm). Tensor collectives are stream-ordered:
// on the CPU the compute queue hands each job to the communication thread when it reaches it (the
// compute goes on: overlap) and commWait() orders later compute after all handed jobs; on CUDA NCCL
// runs on the tensors' stream. Host collectives (statistics, bootstrap bytes, barrier) return
// Promises settled off the JS thread, ordered after the CPU queue's work so every rank issues its
// collectives in one order.
#include <atomic>
#include <cstring>

#include "async.h"
#include "op_args.h"
#include "../comm/comm_thread.h"
#include "../comm/mpi.h"
#ifdef MIXT_WITH_CUDA
#include "../comm/nccl.h"
#endif

namespace mixt {
namespace {

std::atomic<double> timeout_s{300};

struct Buffer {
  std::shared_ptr<Storage> keep;  // alive until the job ran
  TensorView view;
};

std::vector<Buffer> tensor_list(const Napi::CallbackInfo& info, size_t i, const char* op, Backend** backend) {
  if (!info[i].IsArray()) throw Error("ERR_INVALID_ARG", std::string(op) + ": tensors: expected an array of tensors");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<Buffer> out;
  std::vector<const TensorHandle*> all;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a[k];
    if (!v.IsObject()) throw Error("ERR_INVALID_ARG", std::string(op) + ": tensors[" + std::to_string(k) + "]: expected a tensor");
    TensorHandle* h = TensorHandle::Unwrap(v.As<Napi::Object>());
    if (!h || h->disposed()) throw Error("ERR_INVALID_ARG", std::string(op) + ": tensors[" + std::to_string(k) + "]: expected a live tensor");
    all.push_back(h);
    out.push_back({h->storage(), h->view()});
  }
  *backend = &backend_of(op, all);
  return out;
}

// One flat buffer of the bucket (a single tensor is reduced where it lies).
void all_reduce_bucket(const std::vector<Buffer>& bufs) {
  if (bufs.size() == 1) return mpi::all_reduce_sum(bufs[0].view.data, bufs[0].view.numel(), bufs[0].view.dtype);
  size_t bytes = 0;
  for (auto& b : bufs) bytes += b.view.nbytes();
  std::vector<uint8_t> flat(bytes);
  size_t at = 0;
  for (auto& b : bufs) std::memcpy(flat.data() + (at += b.view.nbytes()) - b.view.nbytes(), b.view.data, b.view.nbytes());
  mpi::all_reduce_sum(flat.data(), int64_t(bytes / dtype_size(bufs[0].view.dtype)), bufs[0].view.dtype);
  at = 0;
  for (auto& b : bufs) {
    std::memcpy(b.view.data, flat.data() + at, b.view.nbytes());
    at += b.view.nbytes();
  }
}

// commMpiInit(timeoutSeconds, library) -> Promise<{ rank, size, library }> ('' : the usual names)
MIXT_ENTRY(comm_mpi_init) {
  double t = number_arg(info, 0, "timeoutSeconds");
  if (!info[1].IsString()) throw Error("ERR_INVALID_ARG", "commMpiInit: library: expected a string");
  std::string library = info[1].As<Napi::String>().Utf8Value();
  timeout_s = t;
  // a failed init is this call's error, not the communication thread's (a later init may succeed)
  struct Outcome {
    mpi::World world;
    std::string code, message;
  };
  auto out = std::make_shared<Outcome>();
  uint64_t ticket = CommThread::get().push("MPI_Init", [out, library] {
    try {
      out->world = mpi::init(library);
    } catch (const Error& e) {
      out->code = e.code;
      out->message = e.what();
      return;
    }
    CommThread::get().set_identity("rank " + std::to_string(out->world.rank) + " of " + std::to_string(out->world.size));
  });
  return PromiseWorker::start(
      info.Env(), [ticket, t, out] {
        CommThread::get().wait(ticket, t);
        if (!out->code.empty()) throw Error(out->code, out->message);
      },
      [out](Napi::Env env) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("rank", out->world.rank);
        o.Set("size", out->world.size);
        o.Set("library", out->world.library);
        return o;
      });
}

// A tensor collective, stream-ordered: CPU via the communication thread, CUDA via NCCL on the stream.
template <typename Cpu, typename Cuda>
void tensor_collective(const char* op, Backend& backend, std::vector<Buffer> bufs, Cpu cpu_job, Cuda cuda_job) {
  if (bufs.empty()) return;
  if (backend.device() < 0) {
    backend.submit(op, [op, bufs, cpu_job](const Stream&) { CommThread::get().push(op, [bufs, cpu_job] { cpu_job(bufs); }); });
    return;
  }
#ifdef MIXT_WITH_CUDA
  std::vector<TensorView> views;
  for (auto& b : bufs) views.push_back(b.view);
  backend.submit(op, [views, cuda_job](const Stream& s) { cuda_job(views, s.cuda_stream); });
#else
  (void)cuda_job;
  no_cuda();
#endif
}

// commAllReduce(tensors): sums each over the ranks, in place. CPU: f32 or f64, one dtype per call
// (packed into one flat buffer); CUDA: f32 or bf16.
MIXT_ENTRY(comm_all_reduce) {
  Backend* backend = nullptr;
  auto bufs = tensor_list(info, 0, "commAllReduce", &backend);
  for (auto& b : bufs)
    if (b.view.dtype != bufs[0].view.dtype) throw Error("ERR_INVALID_ARG", "commAllReduce: tensors of one call must share a dtype");
  // checked here, on the JS thread: a dtype refused later, on the communication thread or inside an open
  // NCCL group, would leave every later collective failing or hanging
  if (!bufs.empty()) {
    const DType d = bufs[0].view.dtype;
    const bool cpu = backend->device() < 0;
    if (cpu ? !(d == DType::F32 || d == DType::F64) : !(d == DType::F32 || d == DType::BF16))
      throw Error("ERR_INVALID_ARG", std::string("commAllReduce: tensors of dtype ") + dtype_name(d) + ", expected " + (cpu ? "f32 or f64 on the CPU" : "f32 or bf16 on CUDA"));
  }
  tensor_collective("allReduce", *backend, std::move(bufs), all_reduce_bucket, [](const std::vector<TensorView>& v, void* stream) {
#ifdef MIXT_WITH_CUDA
    nccl::all_reduce_sum(v, stream);
#endif
  });
  return info.Env().Undefined();
}

// commBroadcast(tensors, root): rank root's bytes into every rank's tensors.
MIXT_ENTRY(comm_broadcast) {
  Backend* backend = nullptr;
  auto bufs = tensor_list(info, 0, "commBroadcast", &backend);
  int root = int(int_arg(info, 1, "root"));
  tensor_collective("broadcast", *backend, std::move(bufs), [root](const std::vector<Buffer>& bs) {
    for (auto& b : bs) mpi::broadcast(b.view.data, int64_t(b.view.nbytes()), root);
  }, [root](const std::vector<TensorView>& v, void* stream) {
#ifdef MIXT_WITH_CUDA
    nccl::broadcast(v, root, stream);
#endif
  });
  return info.Env().Undefined();
}

// commWait(device): later work on the device waits for the collectives handed off so far (CPU;
// on CUDA NCCL is already in stream order). A timeout or a failed collective becomes the queue's
// error, thrown at the next read.
MIXT_ENTRY(comm_wait) {
  int64_t device = int_arg(info, 0, "device");
  if (device < 0) {
    Context::of(info.Env()).backend(-1)->submit("commWait", [](const Stream&) {
      CommThread::get().wait(CommThread::get().last_ticket(), timeout_s);
    });
  }
  return info.Env().Undefined();
}

// A host collective after the CPU queue's work: job runs on the communication thread.
Napi::Promise host_collective(Napi::Env env, const char* op, std::function<void()> job, PromiseWorker::Resolve resolve) {
  auto cpu = Context::of(env).backend(-1);
  auto ticket = std::make_shared<std::atomic<uint64_t>>(0);
  cpu->submit(op, [op, ticket, job](const Stream&) { *ticket = CommThread::get().push(op, job); });
  auto fence = cpu->fence();
  return PromiseWorker::start(env, [fence, ticket] {
    fence->wait();
    CommThread::get().wait(*ticket, timeout_s);
  }, std::move(resolve));
}

// commHostAllReduce(Float64Array) -> Promise<Float64Array> of the sums over the ranks.
MIXT_ENTRY(comm_host_all_reduce) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Error("ERR_INVALID_ARG", "commHostAllReduce: values: expected a Float64Array");
  auto a = info[0].As<Napi::Float64Array>();
  auto data = std::make_shared<std::vector<double>>(a.Data(), a.Data() + a.ElementLength());
  return host_collective(info.Env(), "hostAllReduce", [data] { mpi::all_reduce_sum(data->data(), int64_t(data->size()), DType::F64); },
                         [data](Napi::Env env) {
                           auto out = Napi::Float64Array::New(env, data->size());
                           std::memcpy(out.Data(), data->data(), data->size() * sizeof(double));
                           return out;
                         });
}

// commHostBroadcast(Uint8Array, root) -> Promise<Uint8Array> holding root's bytes.
MIXT_ENTRY(comm_host_broadcast) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Error("ERR_INVALID_ARG", "commHostBroadcast: bytes: expected a Uint8Array");
  auto a = info[0].As<Napi::Uint8Array>();
  int root = int(int_arg(info, 1, "root"));
  auto data = std::make_shared<std::vector<uint8_t>>(a.Data(), a.Data() + a.ElementLength());
  return host_collective(info.Env(), "hostBroadcast", [data, root] { mpi::broadcast(data->data(), int64_t(data->size()), root); },
                         [data](Napi::Env env) {
                           auto out = Napi::Uint8Array::New(env, data->size());
                           std::memcpy(out.Data(), data->data(), data->size());
                           return out;
                         });
}

// commBarrier() -> Promise<void>; commFinalize() -> Promise<void> (MPI_Finalize after a barrier).
MIXT_ENTRY(comm_barrier) {
  return host_collective(info.Env(), "barrier", [] { mpi::barrier(); }, [](Napi::Env env) { return env.Undefined(); });
}
MIXT_ENTRY(comm_finalize) {
  return host_collective(info.Env(), "finalize", [] {
    if (!mpi::initialised()) return;
    mpi::barrier();
    mpi::finalize();
  }, [](Napi::Env env) { return env.Undefined(); });
}

// commNcclUniqueId() -> Uint8Array (128 bytes); commNcclInit(device, rank, size, id) -> Promise<library>.
MIXT_ENTRY(comm_nccl_unique_id) {
#ifdef MIXT_WITH_CUDA
  auto id = nccl::unique_id();
  auto out = Napi::Uint8Array::New(info.Env(), id.size());
  std::memcpy(out.Data(), id.data(), id.size());
  return out;
#else
  throw Error("ERR_COMM_UNAVAILABLE", "NCCL is unusable: this addon was built without CUDA");
#endif
}
MIXT_ENTRY(comm_nccl_init) {
  int device = int(int_arg(info, 0, "device")), rank = int(int_arg(info, 1, "rank")), size = int(int_arg(info, 2, "size"));
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Error("ERR_INVALID_ARG", "commNcclInit: id: expected a Uint8Array");
  auto a = info[3].As<Napi::Uint8Array>();
  std::vector<uint8_t> id(a.Data(), a.Data() + a.ElementLength());
#ifdef MIXT_WITH_CUDA
  Context::of(info.Env()).backend(device);  // the device's context exists before NCCL joins it
  auto library = std::make_shared<std::string>();
  return PromiseWorker::start(info.Env(), [=] { *library = nccl::init(device, rank, size, id); },
                              [library](Napi::Env env) { return Napi::String::New(env, *library); });
#else
  (void)device, (void)rank, (void)size;
  throw Error("ERR_COMM_UNAVAILABLE", "NCCL is unusable: this addon was built without CUDA");
#endif
}

}  // namespace

MIXT_EXPORT("commMpiInit", comm_mpi_init);
MIXT_EXPORT("commAllReduce", comm_all_reduce);
MIXT_EXPORT("commBroadcast", comm_broadcast);
MIXT_EXPORT("commWait", comm_wait);
MIXT_EXPORT("commHostAllReduce", comm_host_all_reduce);
MIXT_EXPORT("commHostBroadcast", comm_host_broadcast);
MIXT_EXPORT("commBarrier", comm_barrier);
MIXT_EXPORT("commFinalize", comm_finalize);
MIXT_EXPORT("commNcclUniqueId", comm_nccl_unique_id);
MIXT_EXPORT("commNcclInit", comm_nccl_init);

}  // namespace mixt
