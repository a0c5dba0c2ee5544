// RMSNorm and LayerNorm whose weight (and bias) rows are chosen per row by a group id (modality):
// y = xhat * w[g] (+ b[g]), xhat = x * rstd (RMS) or (x - mean) * rstd (Layer). Row statistics in
// fp32 (double on f64); weight gradients reduced deterministically.
#pragma once

#include "runtime.h"

namespace mixt {

enum class NormKind : int { RMS = 0, Layer = 1 };

struct NormArgs {
  NormKind kind = NormKind::RMS;
  int64_t rows = 0, dim = 0, groups = 1;
  double eps = 1e-6;
  TensorView x, weight, bias, ids;  // bias / ids: data null when absent (ids absent: all rows group 0)
  TensorView mean, rstd;            // f32 [rows] (mean: Layer only)
};

#define MIXT_NORM_API                                                                                 \
  void norm_forward(const Stream& s, const NormArgs& a, const TensorView& y);                        \
  /* dx [rows, dim]; dweight (and dbias) [groups, dim] are overwritten */                            \
  void norm_backward(const Stream& s, const NormArgs& a, const TensorView& dy, const TensorView& dx, \
                     const TensorView& dweight, const TensorView& dbias);

namespace cpu { MIXT_NORM_API }
namespace cuda { MIXT_NORM_API }

// SwiGLU on a fused gate|up projection: h = silu(g) * u, g = gu[:, :F], u = gu[:, F:].
#define MIXT_ACTIVATION_API                                                                 \
  void swiglu_forward(const Stream& s, const TensorView& gate_up, int64_t f, const TensorView& h); \
  void swiglu_backward(const Stream& s, const TensorView& dh, const TensorView& gate_up, int64_t f, \
                       const TensorView& dgate_up);

namespace cpu { MIXT_ACTIVATION_API }
namespace cuda { MIXT_ACTIVATION_API }

template <typename A>
MIXT_HD void swiglu_grad(A g, A u, A dh, A* dg, A* du) {
  A sg = A(1) / (A(1) + m_exp(-g));
  A silu = g * sg;
  *du = dh * silu;
  *dg = dh * u * (sg * (A(1) + g * (A(1) - sg)));
}

}  // namespace mixt
