// Entry points for tensor lifetime, transfers, memory stats, sync and device discovery.
#include "async.h"
#include "op_args.h"
#include "../kernels/elementwise.h"
#include "../cpu/parallel.h"
#ifdef MIXT_WITH_CUDA
#include "../cuda/device_info.h"
#endif

#ifndef MIXT_VERSION
#define MIXT_VERSION "0.0.0"
#endif
#ifndef MIXT_CUDA_ARCHS
#define MIXT_CUDA_ARCHS ""
#endif

namespace mixt {
namespace {

Napi::Object new_storage_handle(Napi::Env env, int device, DType dtype, const std::vector<int64_t>& shape) {
  int64_t numel = shape_numel(shape, "shape");
  if (device >= 0 && dtype == DType::F64) throw Error("ERR_INVALID_ARG", "dtype: f64 tensors live on the CPU only");
  auto backend = Context::of(env).backend(device);
  auto storage = std::make_shared<Storage>(backend, size_t(numel) * dtype_size(dtype));
  return TensorHandle::create(env, storage, 0, dtype, shape);
}

int device_arg(const Napi::CallbackInfo& info, size_t i) {
  int64_t d = int_arg(info, i, "device");
  if (d < -1 || d > 64) throw Error("ERR_INVALID_ARG", "device: expected -1 (cpu) or a CUDA ordinal");
  return int(d);
}

// empty(device, dtype, shape): uninitialised storage.
MIXT_ENTRY(empty) {
  return new_storage_handle(info.Env(), device_arg(info, 0), dtype_arg(info, 1, "dtype"), shape_arg(info, 2, "shape"));
}

// fromBuffer(device, dtype, shape, typedArray): copies the bytes in.
MIXT_ENTRY(from_buffer) {
  Napi::Env env = info.Env();
  DType dt = dtype_arg(info, 1, "dtype");
  auto shape = shape_arg(info, 2, "shape");
  if (!info[3].IsTypedArray()) throw Error("ERR_INVALID_ARG", "data: expected a typed array");
  auto ta = info[3].As<Napi::TypedArray>();
  Napi::Object obj = new_storage_handle(env, device_arg(info, 0), dt, shape);
  TensorHandle& h = *TensorHandle::Unwrap(obj);
  size_t n = h.view().nbytes();
  if (ta.ByteLength() != n)
    throw Error("ERR_INVALID_ARG", "data: expected " + std::to_string(n) + " bytes, got " + std::to_string(ta.ByteLength()));
  const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  h.backend().upload_fresh(h.view().data, src, n);
  return obj;
}

// copy(src, dst): same dtype and size, any two devices; ordered on both streams.
MIXT_ENTRY(copy) {
  TensorHandle& src = TensorHandle::arg(info, 0, "src");
  TensorHandle& dst = TensorHandle::arg(info, 1, "dst");
  TensorView s = src.view(), d = dst.view();
  if (s.dtype != d.dtype || s.numel() != d.numel()) throw Error("ERR_INVALID_ARG", "copy: dtype or size differ");
  size_t n = s.nbytes();
  if (&src.backend() == &dst.backend()) {
    src.backend().submit("copy", [s, d](const Stream& st) { MIXT_CALL(st, copy, s, d); });
  } else if (n) {
    auto stage = make_host_stage(n, src.device() >= 0 || dst.device() >= 0);
    auto ready = src.backend().stage_out(s.data, stage, n);
    dst.backend().stage_in(d.data, stage, n, ready);
  }
  return info.Env().Undefined();
}

Napi::Object stats_object(Napi::Env env, const MemoryStats& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tensors", double(m.tensors));
  o.Set("bytes", double(m.bytes));
  o.Set("peakBytes", double(m.peak_bytes));
  o.Set("allocations", double(m.allocations));
  return o;
}

// memory(): {device name: stats} for every backend used in this environment.
MIXT_ENTRY(memory) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (auto& b : Context::of(env).live_backends()) out.Set(b->name(), stats_object(env, b->stats()));
  return out;
}

MIXT_ENTRY(reset_peak) {
  for (auto& b : Context::of(info.Env()).live_backends()) b->reset_peak();
  return info.Env().Undefined();
}

// sync(): resolves when all work queued so far on every backend is done; rejects with the first
// error queued work raised.
MIXT_ENTRY(sync) {
  std::vector<std::shared_ptr<Fence>> fences;
  for (auto& b : Context::of(info.Env()).live_backends()) fences.push_back(b->fence());
  return PromiseWorker::start(
      info.Env(),
      [fences] {
        std::unique_ptr<Error> first;
        for (auto& f : fences) {
          try {
            f->wait();
          } catch (const Error& e) {
            if (!first) first = std::make_unique<Error>(e);
          }
        }
        if (first) throw *first;
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

const napi_type_tag kMarkTag = {0x6d6978746d61726bULL, 0x74696d656d61726bULL};

// mark(device): a timestamp in the device's stream order (for the bench's timings).
MIXT_ENTRY(mark) {
  Napi::Env env = info.Env();
  auto m = Context::of(env).backend(device_arg(info, 0))->mark();
  auto* holder = new std::shared_ptr<TimeMark>(std::move(m));
  auto ext = Napi::External<std::shared_ptr<TimeMark>>::New(env, holder, [](Napi::Env, std::shared_ptr<TimeMark>* h) { delete h; });
  ext.TypeTag(&kMarkTag);
  return ext;
}

std::shared_ptr<TimeMark> mark_arg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!v.IsExternal() || !v.As<Napi::Object>().CheckTypeTag(&kMarkTag)) throw Error("ERR_INVALID_ARG", "expected a mark");
  return *v.As<Napi::External<std::shared_ptr<TimeMark>>>().Data();
}

// elapsed(a, b): Promise<number>, milliseconds between two marks of one device.
MIXT_ENTRY(elapsed) {
  auto a = mark_arg(info, 0), b = mark_arg(info, 1);
  auto ms = std::make_shared<double>(0);
  return PromiseWorker::start(
      info.Env(), [a, b, ms] { *ms = b->elapsed_ms(*a); },
      [ms](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *ms); });
}

MIXT_ENTRY(build_info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", MIXT_VERSION);
#ifdef MIXT_WITH_CUDA
  o.Set("cuda", true);
#else
  o.Set("cuda", false);
#endif
  o.Set("cudaArchs", MIXT_CUDA_ARCHS);
  o.Set("napiVersion", NAPI_VERSION);
#if defined(__clang__)
  o.Set("compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
  o.Set("compiler", "gcc " __VERSION__);
#endif
  o.Set("cpuThreads", cpu::num_threads());
  return o;
}

// cudaStatus(): whether CUDA is usable here, why not, and the devices.
MIXT_ENTRY(cuda_status_entry) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#ifdef MIXT_WITH_CUDA
  CudaStatus st = ::mixt::cuda_status();
  o.Set("compiled", true);
  o.Set("usable", st.usable);
  o.Set("reason", st.reason);
  o.Set("driverVersion", st.driver_version);
  o.Set("runtimeVersion", st.runtime_version);
  Napi::Array devs = Napi::Array::New(env);
  for (auto& d : st.devices) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("index", d.index);
    x.Set("name", d.name);
    x.Set("totalMemory", double(d.total_memory));
    size_t fr = 0, tot = 0;
    if (cuda_device_memory(d.index, &fr, &tot)) x.Set("freeMemory", double(fr));
    x.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    x.Set("multiprocessors", d.multiprocessors);
    x.Set("l2Bytes", d.l2_bytes);
    x.Set("sharedMemoryPerBlock", double(d.smem_optin));
    devs.Set(devs.Length(), x);
  }
  o.Set("devices", devs);
#else
  o.Set("compiled", false);
  o.Set("usable", false);
  o.Set("reason", "this build of mixt has no CUDA backend (nvcc was not found when it was built)");
  o.Set("driverVersion", 0);
  o.Set("runtimeVersion", 0);
  o.Set("devices", Napi::Array::New(env));
#endif
  return o;
}

}  // namespace

MIXT_EXPORT("empty", empty);
MIXT_EXPORT("fromBuffer", from_buffer);
MIXT_EXPORT("copy", copy);
MIXT_EXPORT("memory", memory);
MIXT_EXPORT("resetPeak", reset_peak);
MIXT_EXPORT("sync", sync);
MIXT_EXPORT("buildInfo", build_info);
MIXT_EXPORT("mark", mark);
MIXT_EXPORT("elapsed", elapsed);
MIXT_EXPORT("cudaStatus", cuda_status_entry);

}  // namespace mixt
