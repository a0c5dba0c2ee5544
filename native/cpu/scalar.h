// Element access by run-time dtype for the CPU backend's small auxiliary tensors (statistics,
// gates, losses: f32, or f64 in f64 runs; bf16 gradients), in double.
#pragma once

#include "../kernels/common.h"

namespace mixt::cpu {

inline double get_scalar(const TensorView& t, int64_t i) {
  switch (t.dtype) {
    case DType::F64: return t.ptr<double>()[i];
    case DType::BF16: return bf16_to_float(t.ptr<uint16_t>()[i]);
    case DType::I32: return t.ptr<int32_t>()[i];
    default: return t.ptr<float>()[i];
  }
}

inline void set_scalar(const TensorView& t, int64_t i, double v) {
  switch (t.dtype) {
    case DType::F64: t.ptr<double>()[i] = v; break;
    case DType::BF16: t.ptr<uint16_t>()[i] = float_to_bf16(float(v)); break;
    case DType::I32: t.ptr<int32_t>()[i] = int32_t(v); break;
    default: t.ptr<float>()[i] = float(v);
  }
}

}  // namespace mixt::cpu
