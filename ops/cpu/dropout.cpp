// CPU kernels for dropout and head dropout (see ops/kernels.h).
//
// Both masks are pure functions of the Philox stream (seed, offset), so the
// backward pass regenerates the forward mask instead of reading a stored one:
// dropout is linear in x, and its backward is the same map applied to dout.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/philox.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/head_dropout_mask.h"

namespace bertforge::cpu {

namespace {

constexpr int64_t kChunk = 2048;                 // elements per task; a multiple of 4 (one Philox block)

inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// out (n) = keep_i ? x_i / (1 - p) : 0, keep_i = philox_uniform(seed, offset, i) >= p. out may alias x.
//
// The comparison is done on integers: philox_uniform is (word >> 8) * 2^-24, so
// u >= p exactly when (word >> 8) >= ceil(p * 2^24). Integer masks also keep the
// loops vectorisable (GCC will not if-convert float selects under -ftrapping-math).
void dropout_apply(float* out, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) {
  if (p >= 1.0f) {  // nothing is kept (and 1 / (1 - p) would be inf)
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = 0.0f;
    return;
  }
  const float keep_scale = 1.0f / (1.0f - p);
  // p * 2^24 is exact in float, so this threshold reproduces u >= p exactly.
  const uint32_t threshold = p > 0.0f ? static_cast<uint32_t>(std::ceil(p * 16777216.0f)) : 0u;
  const int64_t num_chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t chunk = 0; chunk < num_chunks; ++chunk) {
    const int64_t begin = chunk * kChunk, count = std::min(kChunk, n - begin);
    // All-ones bits for a kept element, zero for a dropped one; one Philox block gives four.
    alignas(64) uint32_t keep_bits[kChunk];
    const uint64_t first_block = static_cast<uint64_t>(begin / 4);
    for (int64_t b = 0; b < (count + 3) / 4; ++b) {
      const Uint32x4 words = philox_block(seed, offset, first_block + b);
      for (int j = 0; j < 4; ++j) keep_bits[4 * b + j] = (words.x[j] >> 8) >= threshold ? ~0u : 0u;
    }
    const float* x_chunk = x + begin;
    float* out_chunk = out + begin;
    // Masking the bits rather than multiplying by 0 sends a dropped inf or NaN to 0.
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) {
      out_chunk[i] = bits_to_float(float_to_bits(x_chunk[i] * keep_scale) & keep_bits[i]);
    }
  }
}

// out (batch, heads, inner) = x scaled per (sample, head) by the head dropout mask. out may alias x.
void head_dropout_apply(float* out, const float* x, int64_t batch, int64_t heads, int64_t inner, float p,
                        uint64_t seed, uint64_t offset) {
  std::vector<HeadDropoutMask> masks(batch);
  for (int64_t b = 0; b < batch; ++b) {
    masks[b] = head_dropout_mask(seed, offset, static_cast<uint64_t>(b), static_cast<int>(heads), p);
  }
#pragma omp parallel for schedule(static) if (batch * heads * inner > kParallelThreshold)
  for (int64_t row = 0; row < batch * heads; ++row) {
    const HeadDropoutMask& mask = masks[row / heads];
    const float* x_row = x + row * inner;
    float* out_row = out + row * inner;
    if ((mask.keep_bits >> (row % heads)) & 1) {
      const float s = mask.scale;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) out_row[i] = x_row[i] * s;
    } else {
      std::memset(out_row, 0, static_cast<size_t>(inner) * sizeof(float));
    }
  }
}

}  // namespace

void dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_apply(out, x, n, p, seed, offset);
}

void dropout_backward(float* dx, const float* dout, int64_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_apply(dx, dout, n, p, seed, offset);
}

void head_dropout_forward(float* out, const float* x, int64_t batch, int64_t heads, int64_t inner, float p,
                          uint64_t seed, uint64_t offset) {
  head_dropout_apply(out, x, batch, heads, inner, p, seed, offset);
}

void head_dropout_backward(float* dx, const float* dout, int64_t batch, int64_t heads, int64_t inner, float p,
                           uint64_t seed, uint64_t offset) {
  head_dropout_apply(dx, dout, batch, heads, inner, p, seed, offset);
}

}  // namespace bertforge::cpu
