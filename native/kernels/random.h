// Counter-based random numbers (Philox4x32-10) that give the same values on CPU and CUDA for the
// same seed and offset: element i of a fill takes lane i%4 of block (offset + i/4). The float
// math below uses only correctly rounded +, *, / and sqrt, never contracted into FMA (nvcc
// intrinsics on the device, -ffp-contract=off on the host), so the streams match bit for bit.
#pragma once

#include "runtime.h"

namespace mixt {

struct Philox {
  uint32_t v[4];
};

MIXT_HD uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  return uint32_t(p);
}

MIXT_HD Philox philox4x32_10(uint64_t counter, uint64_t key) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox{{c0, c1, c2, c3}};
}

MIXT_HD float exact_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
MIXT_HD float exact_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// Uniform in [0, 1) with 24 random bits (exact in float).
MIXT_HD float uniform01(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }

// ln(u) for u in (0, 1]: u = m * 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh((m-1)/(m+1)).
MIXT_HD float portable_log(float u) {
  uint32_t bits;
#if defined(__CUDA_ARCH__)
  bits = __float_as_uint(u);
#else
  std::memcpy(&bits, &u, 4);
#endif
  int e = int((bits >> 23) & 0xff) - 127;
  uint32_t mb = (bits & 0x007fffffu) | 0x3f800000u;  // m in [1, 2)
  float m;
#if defined(__CUDA_ARCH__)
  m = __uint_as_float(mb);
#else
  std::memcpy(&m, &mb, 4);
#endif
  if (m > 1.41421356f) {
    m = exact_mul(m, 0.5f);
    e += 1;
  }
  float num = exact_add(m, -1.0f), den = exact_add(m, 1.0f);
#if defined(__CUDA_ARCH__)
  float s = __fdiv_rn(num, den);
#else
  float s = num / den;
#endif
  float s2 = exact_mul(s, s);
  // 2*atanh(s) = 2s (1 + s^2/3 + s^4/5 + ... ), |s| < 0.172
  float p = 1.0f / 13.0f;
  p = exact_add(exact_mul(p, s2), 1.0f / 11.0f);
  p = exact_add(exact_mul(p, s2), 1.0f / 9.0f);
  p = exact_add(exact_mul(p, s2), 1.0f / 7.0f);
  p = exact_add(exact_mul(p, s2), 1.0f / 5.0f);
  p = exact_add(exact_mul(p, s2), 1.0f / 3.0f);
  p = exact_add(exact_mul(p, s2), 1.0f);
  float lnm = exact_mul(exact_mul(2.0f, s), p);
  return exact_add(exact_mul(float(e), 0.693147180559945f), lnm);
}

// sin and cos of 2*pi*t for t in [0, 1) (t a multiple of 2^-24: the quadrant split is exact).
MIXT_HD void portable_sincos_turns(float t, float* sn, float* cs) {
  float q4 = exact_mul(t, 4.0f);
  int q = int(q4);  // truncation of a non-negative value
  float r = exact_add(t, -exact_mul(float(q), 0.25f));  // [0, 1/4), exact
  if (r > 0.125f) {
    r = exact_add(r, -0.25f);
    q += 1;
  }
  float x = exact_mul(r, 6.28318530717958648f);  // [-pi/4, pi/4]
  float x2 = exact_mul(x, x);
  float ps = -1.0f / 39916800.0f;
  ps = exact_add(exact_mul(ps, x2), 1.0f / 362880.0f);
  ps = exact_add(exact_mul(ps, x2), -1.0f / 5040.0f);
  ps = exact_add(exact_mul(ps, x2), 1.0f / 120.0f);
  ps = exact_add(exact_mul(ps, x2), -1.0f / 6.0f);
  ps = exact_add(exact_mul(ps, x2), 1.0f);
  float s = exact_mul(x, ps);
  float pc = 1.0f / 479001600.0f;
  pc = exact_add(exact_mul(pc, x2), -1.0f / 3628800.0f);
  pc = exact_add(exact_mul(pc, x2), 1.0f / 40320.0f);
  pc = exact_add(exact_mul(pc, x2), -1.0f / 720.0f);
  pc = exact_add(exact_mul(pc, x2), 1.0f / 24.0f);
  pc = exact_add(exact_mul(pc, x2), -0.5f);
  float c = exact_add(exact_mul(pc, x2), 1.0f);
  switch (q & 3) {
    case 0: *sn = s; *cs = c; break;
    case 1: *sn = c; *cs = -s; break;
    case 2: *sn = -s; *cs = -c; break;
    default: *sn = -c; *cs = s; break;
  }
}

// Element i of a random fill: uniform in [lo, hi) or normal with mean `a`, std `b`.
MIXT_HD float random_value(uint64_t seed, uint64_t offset, int64_t i, bool normal, float a, float b) {
  Philox r = philox4x32_10(offset + uint64_t(i >> 2), seed);
  int lane = int(i & 3);
  if (!normal) return exact_add(a, exact_mul(exact_add(b, -a), uniform01(r.v[lane])));
  // Box-Muller on the pair (lane & ~1, lane | 1).
  int p = lane & ~1;
  float u1 = exact_mul(float((r.v[p] >> 8) + 1u), 1.0f / 16777216.0f);  // (0, 1]
  float u2 = uniform01(r.v[p + 1]);
  float rad;
#if defined(__CUDA_ARCH__)
  rad = __fsqrt_rn(exact_mul(-2.0f, portable_log(u1)));
#else
  rad = std::sqrt(exact_mul(-2.0f, portable_log(u1)));
#endif
  float sn, cs;
  portable_sincos_turns(u2, &sn, &cs);
  float z = exact_mul(rad, (lane & 1) ? sn : cs);
  return exact_add(a, exact_mul(b, z));
}

// Philox blocks one fill of n elements consumes (the generator's offset advances by this).
inline uint64_t random_blocks(int64_t n) { return uint64_t((n + 3) / 4); }

#define MIXT_RANDOM_API \
  void random(const Stream& s, const TensorView& out, uint64_t seed, uint64_t offset, bool normal, double a, double b);

namespace cpu { MIXT_RANDOM_API }
namespace cuda { MIXT_RANDOM_API }

}  // namespace mixt
