// Elementwise ops: binary with trailing-shape broadcast, unary maps, affine, casts, fills, copies.
#pragma once

#include "runtime.h"

namespace mixt {

enum class BinaryOp : int { Add = 0, Sub = 1, Mul = 2, Div = 3, Max = 4, Min = 5 };
enum class UnaryOp : int {
  Neg = 0, Exp = 1, Log = 2, Sqrt = 3, Rsqrt = 4, Abs = 5, Relu = 6, Silu = 7,
  Gelu = 8, Tanh = 9, Sigmoid = 10, Square = 11, Recip = 12, Softplus = 13, Step = 14
};

// The op applied to one pair of values, in the accumulation type (float or double).
template <typename A>
MIXT_HD A apply_binary(BinaryOp op, A x, A y) {
  switch (op) {
    case BinaryOp::Add: return x + y;
    case BinaryOp::Sub: return x - y;
    case BinaryOp::Mul: return x * y;
    case BinaryOp::Div: return x / y;
    case BinaryOp::Max: return x > y || x != x ? x : y;  // NaN propagates
    case BinaryOp::Min: return x < y || x != x ? x : y;
  }
  return x;
}

#define MIXT_ELEMENTWISE_API                                                                           \
  /* out = a (op) b; b's shape is a suffix of a's (broadcast over leading dims); same dtype. */      \
  void binary(const Stream& s, BinaryOp op, const TensorView& a, const TensorView& b, const TensorView& out); \
  /* out = f(x) */                                                                                    \
  void unary(const Stream& s, UnaryOp op, const TensorView& x, const TensorView& out);               \
  /* out = alpha * x + beta * y (y may be null: then out = alpha * x + beta) */                       \
  void axpby(const Stream& s, double alpha, const TensorView& x, double beta, const TensorView* y,   \
             const TensorView& out);                                                                  \
  /* out = x converted to out's dtype (round to nearest even into bf16) */                            \
  void cast(const Stream& s, const TensorView& x, const TensorView& out);                            \
  void fill(const Stream& s, const TensorView& out, double value);                                   \
  void copy(const Stream& s, const TensorView& src, const TensorView& dst);

namespace cpu { MIXT_ELEMENTWISE_API }
namespace cuda { MIXT_ELEMENTWISE_API }

}  // namespace mixt

namespace mixt {

template <typename A>
MIXT_HD A apply_unary(UnaryOp op, A x) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return m_exp(x);
    case UnaryOp::Log: return m_log(x);
    case UnaryOp::Sqrt: return m_sqrt(x);
    case UnaryOp::Rsqrt: return A(1) / m_sqrt(x);
    case UnaryOp::Abs: return m_abs(x);
    case UnaryOp::Relu: return x > A(0) ? x : A(0);
    case UnaryOp::Silu: return x * sigmoid_(x);
    case UnaryOp::Gelu: return A(0.5) * x * (A(1) + m_erf(x * A(0.70710678118654752440)));
    case UnaryOp::Tanh: return m_tanh(x);
    case UnaryOp::Sigmoid: return sigmoid_(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Recip: return A(1) / x;
    case UnaryOp::Softplus: return x > A(20) ? x : m_log(A(1) + m_exp(x));
    case UnaryOp::Step: return x > A(0) ? A(1) : A(0);  // Heaviside: masks (relu', decisions)
  }
  return x;
}

}  // namespace mixt
