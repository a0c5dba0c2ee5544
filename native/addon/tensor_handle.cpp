#include "tensor_handle.h"

#include <cmath>

#include "async.h"
#include "context.h"

namespace mixt {
namespace {
// Marks objects made by this addon so a foreign object is rejected, never reinterpreted.
const napi_type_tag kHandleTag = {0x6d69787474656e73ULL, 0x6f7268616e646c65ULL};
}

Napi::Function TensorHandle::define(Napi::Env env) {
  return DefineClass(env, "TensorHandle",
                     {InstanceMethod<&TensorHandle::dispose>("dispose"),
                      InstanceMethod<&TensorHandle::make_view>("view"),
                      InstanceMethod<&TensorHandle::read>("read"),
                      InstanceAccessor<&TensorHandle::nbytes>("nbytes")});
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  info.This().As<Napi::Object>().TypeTag(&kHandleTag);
}

TensorHandle::~TensorHandle() { release(); }

void TensorHandle::release() {
  if (!storage_) return;
  storage_->backend->count_handle(-1);
  storage_.reset();  // the last reference frees the storage, ordered after queued work
}

Napi::Object TensorHandle::create(Napi::Env env, std::shared_ptr<Storage> storage, size_t offset, DType dtype,
                                  const std::vector<int64_t>& shape) {
  Napi::Object obj = Context::of(env).handle_class.New({});
  TensorHandle* h = Unwrap(obj);
  h->storage_ = std::move(storage);
  h->offset_ = offset;
  h->dtype_ = dtype;
  h->shape_ = shape;
  h->storage_->backend->count_handle(+1);
  return obj;
}

TensorHandle& TensorHandle::arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Env env = info.Env();
  Napi::Value v = info[i];
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kHandleTag))
    throw_js(env, "ERR_INVALID_ARG", std::string(name) + ": expected a tensor handle");
  TensorHandle* h = Unwrap(v.As<Napi::Object>());
  if (h->disposed()) throw_js(env, "ERR_DISPOSED", std::string(name) + ": tensor was disposed");
  return *h;
}

TensorView TensorHandle::view() const {
  TensorView v;
  v.data = static_cast<char*>(storage_->ptr) + offset_;
  v.dtype = dtype_;
  v.ndim = int(shape_.size());
  for (int i = 0; i < v.ndim; i++) v.shape[i] = shape_[i];
  return v;
}

Napi::Value TensorHandle::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

Napi::Value TensorHandle::nbytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), disposed() ? 0 : double(view().nbytes()));
}

// view(shape, elementOffset[, dtype]): a tensor sharing this storage.
Napi::Value TensorHandle::make_view(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value { return make_view_checked(info); });
}

Napi::Value TensorHandle::make_view_checked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed()) throw_js(env, "ERR_DISPOSED", "view: tensor was disposed");
  auto shape = shape_arg(info, 0, "shape");
  double off = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  DType dt = info.Length() > 2 && !info[2].IsUndefined() ? dtype_arg(info, 2, "dtype") : dtype_;
  if (off < 0 || off != std::floor(off)) throw_js(env, "ERR_INVALID_ARG", "view: offset must be a non-negative integer");
  int64_t numel = shape_numel(shape, "view");
  if (off > double(kMaxElements)) throw_js(env, "ERR_INVALID_ARG", "view: offset out of range");
  size_t begin = offset_ + size_t(off) * dtype_size(dt);
  if (begin > storage_->bytes || size_t(numel) * dtype_size(dt) > storage_->bytes - begin)
    throw_js(env, "ERR_INVALID_ARG", "view: the view reaches past the end of the storage");
  return create(env, storage_, begin, dt, shape);
}

// read(): Promise<ArrayBuffer> with this tensor's bytes, ordered after all work queued before it.
Napi::Value TensorHandle::read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (disposed()) throw Error("ERR_DISPOSED", "read: tensor was disposed");
    size_t n = view().nbytes();
    auto stage = make_host_stage(n, device() >= 0);
    auto fence = backend().stage_out(view().data, stage, n);
    return PromiseWorker::start(
        env, [fence] { fence->wait(); },
        [stage, n](Napi::Env env) -> Napi::Value {
          if (!n) return Napi::ArrayBuffer::New(env, 0);
          // The staging memory becomes the ArrayBuffer (no copy on the JS thread); it goes back when
          // the buffer is collected.
          auto* holder = new std::shared_ptr<HostStage>(stage);
          return Napi::ArrayBuffer::New(
              env, stage->ptr, n, [](Napi::Env, void*, std::shared_ptr<HostStage>* h) { delete h; }, holder);
        });
  });
}

int64_t shape_numel(const std::vector<int64_t>& shape, const char* name) {
  // the product of the non-zero sizes is bounded, so that no partial product (rows of an empty
  // last axis included) can overflow anywhere later
  int64_t n = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d == 0) empty = true;
    else if (__builtin_mul_overflow(n, d, &n) || n > kMaxElements)
      throw Error("ERR_INVALID_ARG", std::string(name) + ": the element count exceeds the limit of 2^46");
  }
  return empty ? 0 : n;
}

std::vector<int64_t> shape_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Env env = info.Env();
  if (!info[i].IsArray()) throw_js(env, "ERR_INVALID_ARG", std::string(name) + ": expected an array of sizes");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() > size_t(kMaxDims))
    throw_js(env, "ERR_INVALID_ARG", std::string(name) + ": at most " + std::to_string(kMaxDims) + " dimensions");
  std::vector<int64_t> shape(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a[k];
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
      throw_js(env, "ERR_INVALID_ARG", std::string(name) + ": sizes must be non-negative integers");
    shape[k] = int64_t(d);
  }
  shape_numel(shape, name);
  return shape;
}

DType dtype_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  int32_t d = info[i].IsNumber() ? info[i].As<Napi::Number>().Int32Value() : -1;
  if (d < 0 || d > 3) throw_js(info.Env(), "ERR_INVALID_ARG", std::string(name) + ": unknown dtype code");
  return DType(d);
}

}  // namespace mixt
