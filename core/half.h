// 16-bit floating point storage types: bfloat16 and IEEE half (binary16).
//
// Both are plain 2-byte structs used only for storage; arithmetic happens in
// float. Conversions round to nearest, ties to even, and keep NaN/Inf. They are
// BF_HOST_DEVICE, so a CUDA kernel converts exactly as the CPU does.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/host_device.h"

namespace bertforge {

struct bf16 {
  uint16_t bits = 0;
};
struct f16 {
  uint16_t bits = 0;
};
static_assert(sizeof(bf16) == 2 && sizeof(f16) == 2, "16-bit storage types");

BF_HOST_DEVICE inline uint32_t FloatBits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
BF_HOST_DEVICE inline float BitsToFloat(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// bfloat16 is the top half of a float32: 8 exponent bits, 7 mantissa bits.
BF_HOST_DEVICE inline bf16 FloatToBf16(float f) {
  uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};  // quiet NaN
  uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);  // ties to even
  return bf16{static_cast<uint16_t>((u + rounding_bias) >> 16)};
}
BF_HOST_DEVICE inline float Bf16ToFloat(bf16 h) { return BitsToFloat(static_cast<uint32_t>(h.bits) << 16); }

// binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals below 2^-14.
BF_HOST_DEVICE inline f16 FloatToF16(float f) {
  uint32_t u = FloatBits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return f16{static_cast<uint16_t>(sign | 0x7e00u)};  // NaN
  if (abs >= 0x477ff000u) return f16{static_cast<uint16_t>(sign | 0x7c00u)};  // overflow -> Inf
  if (abs < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    // Scale so that the half subnormal unit 2^-24 becomes 1, then round to even.
    float scaled = BitsToFloat(abs) * 16777216.0f;  // * 2^24, exact
    uint32_t q = static_cast<uint32_t>(scaled);
    float rem = scaled - static_cast<float>(q);
    if (rem > 0.5f || (rem == 0.5f && (q & 1u))) ++q;
    return f16{static_cast<uint16_t>(sign | q)};
  }
  // Normal: rebias exponent (127 -> 15) and round 23 -> 10 mantissa bits.
  uint32_t rounding_bias = 0xfffu + ((abs >> 13) & 1u);
  uint32_t h = (abs - 0x38000000u + rounding_bias) >> 13;
  return f16{static_cast<uint16_t>(sign | h)};
}

BF_HOST_DEVICE inline float F16ToFloat(f16 h) {
  uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  uint32_t exponent = (h.bits >> 10) & 0x1fu;
  uint32_t mantissa = h.bits & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    float v = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exponent == 31) return BitsToFloat(sign | 0x7f800000u | (mantissa << 13));  // Inf/NaN
  return BitsToFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

}  // namespace bertforge
