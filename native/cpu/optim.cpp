#include <algorithm>
#include <cmath>
#include <vector>

#include "../kernels/loss.h"
#include "parallel.h"
#include "scalar.h"

namespace mixt::cpu {

void adamw(const Stream&, const TensorView& param, const TensorView& grad, const TensorView& m, const TensorView& v, const AdamArgs& a,
           const TensorView& grad_scale, const TensorView& copy) {
  const double scale = grad_scale.data ? double(grad_scale.ptr<float>()[0]) : 1.0;
  const double bc1 = 1.0 - std::pow(a.beta1, a.step), bc2 = 1.0 - std::pow(a.beta2, a.step);
  const bool f64 = param.dtype == DType::F64;
  parallel_for(param.numel(), 1 << 13, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      if (f64) {
        double g = get_scalar(grad, i) * scale, p = param.ptr<double>()[i];
        double& mi = m.ptr<double>()[i];
        double& vi = v.ptr<double>()[i];
        mi = a.beta1 * mi + (1 - a.beta1) * g;
        vi = a.beta2 * vi + (1 - a.beta2) * g * g;
        p -= a.lr * (a.weight_decay * p + (mi / bc1) / (std::sqrt(vi / bc2) + a.eps));
        param.ptr<double>()[i] = p;
        if (copy.data) set_scalar(copy, i, p);
      } else {
        // fp32 arithmetic, as on CUDA
        float g = float(get_scalar(grad, i)) * float(scale), p = param.ptr<float>()[i];
        float& mi = m.ptr<float>()[i];
        float& vi = v.ptr<float>()[i];
        mi = float(a.beta1) * mi + float(1 - a.beta1) * g;
        vi = float(a.beta2) * vi + float(1 - a.beta2) * g * g;
        p -= float(a.lr) * (float(a.weight_decay) * p + (mi / float(bc1)) / (std::sqrt(vi / float(bc2)) + float(a.eps)));
        param.ptr<float>()[i] = p;
        if (copy.data) set_scalar(copy, i, p);
      }
    }
  });
}

void sum_squares_into(const Stream&, const TensorView& x, const TensorView& out) {
  const int64_t n = x.numel();
  const int64_t chunk = 1 << 16, chunks = (n + chunk - 1) / chunk;
  std::vector<double> part(size_t(chunks), 0.0);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      double s = 0;
      for (int64_t i = c * chunk; i < std::min(n, (c + 1) * chunk); i++) {
        double v = get_scalar(x, i);
        s += v * v;
      }
      part[size_t(c)] = s;
    }
  });
  double s = 0;
  for (double p : part) s += p;
  set_scalar(out, 0, get_scalar(out, 0) + s);
}

void clip_coefficient(const Stream&, const TensorView& norm_sq, double max_norm, const TensorView& out) {
  double n2 = get_scalar(norm_sq, 0);
  double c = std::isfinite(n2) ? std::min(1.0, max_norm / (std::sqrt(n2) + 1e-6)) : 0.0;
  set_scalar(out, 0, c);
}

}  // namespace mixt::cpu
