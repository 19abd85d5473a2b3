// Vectorisable float math for the CPU kernels.
//
// std::exp, std::erf and a float ?: are not vectorised by GCC without
// -ffast-math (under the default -ftrapping-math a select around float
// arithmetic is not if-converted). These helpers use only arithmetic, fma and
// bit operations, so the loops that call them compile to AVX2 code.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/half.h"  // FloatBits, BitsToFloat

namespace bertforge::cpu {

// cond ? a : b as a bit blend.
inline float select(bool cond, float a, float b) {
  const uint32_t m = 0u - static_cast<uint32_t>(cond);
  return BitsToFloat((FloatBits(a) & m) | (FloatBits(b) & ~m));
}

// cond ? x : 0 as a bit mask.
inline float keep_if(bool cond, float x) { return BitsToFloat(FloatBits(x) & (0u - static_cast<uint32_t>(cond))); }

// e^x for x <= 88 (the kernels call it with x <= 0 up to rounding): within
// 1.3 ulp down to -87, exactly 0 below (-inf included), NaN for NaN.
// Cephes expf: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n ln2 is
// exact), e^r by a degree-6 polynomial, 2^n built in the exponent bits.
// Out-of-range lanes compute garbage that the final mask discards; the
// unsigned exponent arithmetic wraps instead of overflowing.
inline float vec_exp(float x) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits
  const float t = std::fma(x, 1.44269504088896341f, kRound);
  const float n = t - kRound;
  float r = std::fma(n, -0.693359375f, x);
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p, r * r, r + 1.0f);
  const float two_to_n = BitsToFloat((FloatBits(t) - FloatBits(kRound) + 127u) << 23);
  return keep_if(!(x < -87.0f), p * two_to_n);
}

}  // namespace bertforge::cpu
