// TensorHandle: the native half of a lib Tensor. Owns a reference to a storage (shared by views),
// knows its dtype, shape and byte offset. Freed by dispose() or, as a safety net, by GC.
#pragma once

#include <napi.h>

#include <memory>

#include "../kernels/runtime.h"

namespace mixt {

struct Storage {
  std::shared_ptr<Backend> backend;
  void* ptr = nullptr;
  size_t bytes = 0;
  Storage(std::shared_ptr<Backend> b, size_t n) : backend(std::move(b)), bytes(n) { ptr = backend->allocate(n); }
  ~Storage() { backend->release(ptr, bytes); }
};

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function define(Napi::Env env);
  // Makes a JS handle owning a fresh storage (or a view of an existing one).
  static Napi::Object create(Napi::Env env, std::shared_ptr<Storage> storage, size_t offset, DType dtype,
                             const std::vector<int64_t>& shape);
  // Unwraps argument i, checking that it is a live handle; `name` goes into error messages.
  static TensorHandle& arg(const Napi::CallbackInfo& info, size_t i, const char* name);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  TensorView view() const;
  Backend& backend() const { return *storage_->backend; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  int device() const { return storage_->backend->device(); }
  bool disposed() const { return !storage_; }

 private:
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value make_view(const Napi::CallbackInfo& info);
  Napi::Value make_view_checked(const Napi::CallbackInfo& info);
  Napi::Value read(const Napi::CallbackInfo& info);
  Napi::Value nbytes(const Napi::CallbackInfo& info);
  void release();

  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
};

// The element count of a shape; throws ERR_INVALID_ARG past kMaxElements (checked, never wraps).
int64_t shape_numel(const std::vector<int64_t>& shape, const char* name);
std::vector<int64_t> shape_arg(const Napi::CallbackInfo& info, size_t i, const char* name);
DType dtype_arg(const Napi::CallbackInfo& info, size_t i, const char* name);

}  // namespace mixt
