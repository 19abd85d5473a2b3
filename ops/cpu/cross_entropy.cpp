// CPU kernels for cross-entropy over logits with an ignore index (see ops/kernels.h).
//
// Per row: lse = max + log(sum_c exp(logit_c - max)), stable for any logit
// magnitude since every exponent is <= 0. Rows whose target is ignore_index
// are skipped entirely (in MLM about 85% of rows): loss and lse are written
// as 0 and their gradient rows as 0. A row holding a NaN logit gets NaN loss,
// lse and gradient. Targets are trusted to be valid: the op checks them.
//
// exp is a vectorisable polynomial (softmax_exp below, within 1.1 ulp of exp for
// the arguments that occur here): with libm's expf, a scalar call, these kernels
// were 4-8x slower.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/cpu/cpu_kernels.h"

namespace bertforge::cpu {

namespace {

constexpr int64_t kParallelThreshold = 1 << 15;  // below this, threads cost more than they save

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

// exp(x) for the softmax arguments logit - max and logit - lse (x <= 88), within
// 1.1 ulp (checked against double exp over [-87, 0.5]). x below -87 (-inf
// included) gives exp(-87) = 1.6e-38 instead of a smaller number; NaN arguments
// never reach it (the kernels catch NaN logits first).
// This is Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two so
// that n ln2 is exact), exp(r) by a polynomial, 2^n built in the exponent bits.
// It has no branch and no float comparison, so GCC vectorises it under the
// default -ftrapping-math.
inline float softmax_exp(float x) {
  // The clamp as an unsigned min: the bits of negative floats grow with their
  // magnitude from 0x80000000, and -87 is 0xC2AE0000.
  const float clamped = bits_to_float(std::min(float_to_bits(x), 0xC2AE0000u));
  // n = round(x log2(e)): adding 1.5 * 2^23 leaves n in the low mantissa bits.
  const float shifted = clamped * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  const float r = (clamped - n * 0.693359375f) - n * -2.12194440e-4f;
  float poly = 1.9875691500e-4f;
  poly = poly * r + 1.3981999507e-3f;
  poly = poly * r + 8.3334519073e-3f;
  poly = poly * r + 4.1665795894e-2f;
  poly = poly * r + 1.6666665459e-1f;
  poly = poly * r + 5.0000001201e-1f;
  const float exp_r = poly * r * r + r + 1.0f;
  const uint32_t two_to_n = (float_to_bits(shifted) - 0x4B400000u + 127u) << 23;
  return exp_r * bits_to_float(two_to_n);
}

}  // namespace

// loss, lse (rows); logits (rows, classes); targets (rows)
void cross_entropy_forward(float* loss, float* lse, const float* logits, const int64_t* targets, int64_t rows,
                           int64_t classes, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (rows * classes > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] == ignore_index) {
      loss[r] = 0.0f;
      lse[r] = 0.0f;
      continue;
    }
    const float* row = logits + r * classes;
    float max_logit = -INFINITY;
    uint32_t any_nan = 0;  // the max below may skip NaNs, so they are caught here
#pragma omp simd reduction(max : max_logit) reduction(| : any_nan)
    for (int64_t c = 0; c < classes; ++c) {
      max_logit = max_logit > row[c] ? max_logit : row[c];  // std::fmax would be a libm call
      any_nan |= (float_to_bits(row[c]) & 0x7FFFFFFFu) > 0x7F800000u;
    }
    if (any_nan) {
      loss[r] = lse[r] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    double sum = 0.0;  // double: 30k terms of up to 1 each
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < classes; ++c) sum += softmax_exp(row[c] - max_logit);
    const float log_sum = static_cast<float>(std::log(sum));
    lse[r] = max_logit + log_sum;
    // (max - logit[target]) + log_sum rather than lse - logit[target]: no cancellation
    // error of the size of ulp(lse) when the logits are large and the loss is small.
    loss[r] = (max_logit - row[targets[r]]) + log_sum;
  }
}

// dlogits (rows, classes) = dloss_per_row * (softmax(logits) - onehot(target)), 0 on ignored rows.
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int64_t* targets,
                            int64_t rows, int64_t classes, int64_t ignore_index, float dloss_per_row) {
#pragma omp parallel for schedule(static) if (rows * classes > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    float* drow = dlogits + r * classes;
    if (targets[r] == ignore_index) {
      std::memset(drow, 0, static_cast<size_t>(classes) * sizeof(float));
      continue;
    }
    const float row_lse = lse[r];
    if (std::isnan(row_lse)) {  // the row held a NaN logit: its whole gradient is NaN
      std::fill(drow, drow + classes, row_lse);
      continue;
    }
    const float* row = logits + r * classes;
#pragma omp simd
    for (int64_t c = 0; c < classes; ++c) drow[c] = dloss_per_row * softmax_exp(row[c] - row_lse);
    drow[targets[r]] -= dloss_per_row;
  }
}

}  // namespace bertforge::cpu
