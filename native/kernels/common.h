// Types shared by both backends and the addon: dtypes, tensor views, errors.
// Kernels see tensors only as TensorView (a pointer, a dtype and a contiguous shape).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define MIXT_HD __host__ __device__ __forceinline__
#else
#define MIXT_HD inline
#endif

namespace mixt {

enum class DType : int32_t { F32 = 0, F64 = 1, BF16 = 2, I32 = 3 };

inline size_t dtype_size(DType d) {
  switch (d) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::BF16: return 2;
    case DType::I32: return 4;
  }
  return 0;
}

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
  }
  return "?";
}

// An error with a stable code; the addon turns it into a JS MixtError.
struct Error : std::runtime_error {
  std::string code;
  Error(std::string code_, const std::string& msg) : std::runtime_error(msg), code(std::move(code_)) {}
};

[[noreturn]] inline void fail(const std::string& msg) { throw Error("ERR_INVALID", msg); }
#define MIXT_CHECK(cond, msg)      \
  do {                             \
    if (!(cond)) ::mixt::fail(msg); \
  } while (0)

constexpr int kMaxDims = 8;
// The most elements a tensor may have (2^46: 512 TiB of f64), as the product of its non-zero sizes.
// Every shape entering the addon is checked against it in overflow-free 64-bit arithmetic, so no
// product of a live tensor's sizes (numel, rows) can overflow.
constexpr int64_t kMaxElements = int64_t(1) << 46;

// A contiguous tensor as a kernel sees it. Cheap to copy into queued closures.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {0};

  // Element count. Shapes are checked at creation (at most kMaxElements unless a size is 0), so the
  // product of non-zero sizes never overflows; a 0 anywhere makes the count 0 before any product.
  int64_t numel() const { return leading(ndim); }
  int64_t dim(int i) const { return shape[i < 0 ? i + ndim : i]; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
  // Rows x cols view of the last axis against all others. The product of the leading axes, not
  // numel / cols: a last axis of size 0 is valid (rows of nothing) and must not divide by zero.
  int64_t rows() const { return ndim == 0 ? 1 : leading(ndim - 1); }
  // The product of the first k sizes (0 if any of them is 0).
  int64_t leading(int k) const {
    for (int i = 0; i < k; i++)
      if (shape[i] == 0) return 0;
    int64_t n = 1;
    for (int i = 0; i < k; i++) n *= shape[i];
    return n;
  }
  int64_t cols() const { return ndim == 0 ? 1 : shape[ndim - 1]; }
};

// bfloat16 storage: the upper 16 bits of an IEEE float, rounded to nearest even.
// Written once for host and device so both backends round identically.
struct bf16 {
  uint16_t bits;
};

MIXT_HD float bf16_to_float(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
#if defined(__CUDA_ARCH__)
  f = __uint_as_float(u);
#else
  std::memcpy(&f, &u, 4);
#endif
  return f;
}

MIXT_HD uint16_t float_to_bf16(float f) {
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(f);
#else
  std::memcpy(&u, &f, 4);
#endif
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// Uniform element access: every backend computes in float (or double) and stores in the tensor's dtype.
template <typename T>
struct Elem {
  using acc = float;
  static MIXT_HD float load(const T* p, int64_t i) { return float(p[i]); }
  static MIXT_HD void store(T* p, int64_t i, float v) { p[i] = T(v); }
};
template <>
struct Elem<double> {
  using acc = double;
  static MIXT_HD double load(const double* p, int64_t i) { return p[i]; }
  static MIXT_HD void store(double* p, int64_t i, double v) { p[i] = v; }
};
template <>
struct Elem<bf16> {
  using acc = float;
  static MIXT_HD float load(const bf16* p, int64_t i) { return bf16_to_float(p[i].bits); }
  static MIXT_HD void store(bf16* p, int64_t i, float v) { p[i].bits = float_to_bf16(v); }
};

// Math by precision, spelled so host (g++) and device (nvcc) pick the same function.
MIXT_HD float m_exp(float x) { return expf(x); }
MIXT_HD double m_exp(double x) { return ::exp(x); }
MIXT_HD float m_log(float x) { return logf(x); }
MIXT_HD double m_log(double x) { return ::log(x); }
MIXT_HD float m_sqrt(float x) { return sqrtf(x); }
MIXT_HD double m_sqrt(double x) { return ::sqrt(x); }
MIXT_HD float m_abs(float x) { return fabsf(x); }
MIXT_HD double m_abs(double x) { return ::fabs(x); }
MIXT_HD float m_erf(float x) { return erff(x); }
MIXT_HD double m_erf(double x) { return ::erf(x); }
MIXT_HD float m_tanh(float x) { return tanhf(x); }
MIXT_HD double m_tanh(double x) { return ::tanh(x); }
template <typename A>
MIXT_HD A sigmoid_(A x) { return A(1) / (A(1) + m_exp(-x)); }

// Calls f with a typed null pointer for the float dtypes (f32, f64, bf16).
template <typename F>
auto dispatch_float(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::F32: return f(static_cast<float*>(nullptr));
    case DType::F64: return f(static_cast<double*>(nullptr));
    case DType::BF16: return f(static_cast<bf16*>(nullptr));
    default: break;
  }
  fail(std::string(op) + ": dtype " + dtype_name(d) + " is not a float dtype");
}

}  // namespace mixt
