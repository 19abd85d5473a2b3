// CPU kernels for cross-entropy over logits with an ignore index (see ops/kernels.h).
//
// Per row: lse = max + log(sum_c exp(logit_c - max)), stable for any logit
// magnitude since every exponent is <= 0. Rows whose target is ignore_index
// are skipped entirely (in MLM about 85% of rows): loss and lse are written
// as 0 and their gradient rows as 0. A row holding a NaN logit gets NaN loss,
// lse and gradient. Targets are trusted to be valid: the op checks them.
//
// exp is the vectorisable polynomial of ops/cpu/vec_math.h: with libm's expf,
// a scalar call, these kernels were 4-8x slower.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/cpu/cpu_kernels.h"
#include "ops/cpu/vec_math.h"

namespace bertforge::cpu {

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
      any_nan |= (FloatBits(row[c]) & 0x7FFFFFFFu) > 0x7F800000u;
    }
    if (any_nan) {
      loss[r] = lse[r] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    double sum = 0.0;  // double: 30k terms of up to 1 each
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < classes; ++c) sum += vec_exp(row[c] - max_logit);
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
    for (int64_t c = 0; c < classes; ++c) drow[c] = dloss_per_row * vec_exp(row[c] - row_lse);
    drow[targets[r]] -= dloss_per_row;
  }
}

}  // namespace bertforge::cpu
