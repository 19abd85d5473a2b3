// CPU kernels for softmax over the last dim with an optional additive mask, and the clipped softmax
// of "Quantizable Transformers" (Bondarenko et al. 2023), forward and backward (see ops/kernels.h).
//
// Conventions shared by all four kernels:
// - Numerically stable: the row max of logits + mask is subtracted before exponentiating; exp(-inf) is 0.
// - A row whose every entry is -inf (fully masked) gets probability 0 everywhere (PyTorch gives NaN).
//   Its gradient is then 0 too, since backward multiplies by the probabilities.
// - p = e / sum(e) by division, so 0 <= p <= 1 exactly: clipped softmax with gamma = 0, zeta = 1 never
//   clips and is bit-for-bit softmax, forward and backward.
// - NaN logits give a NaN row.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/cpu/cpu_kernels.h"
#include "ops/cpu/vec_math.h"

namespace bertforge::cpu {

namespace {


// probs (cols) = softmax(logits + mask) for one row; mask may be nullptr.
inline void softmax_row(float* probs, const float* logits, const float* mask, int64_t cols) {
  const float* v = logits;
  if (mask != nullptr) {
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) probs[c] = logits[c] + mask[c];
    v = probs;
  }
  float max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max)
  for (int64_t c = 0; c < cols; ++c) max = v[c] > max ? v[c] : max;  // std::max here would not vectorise
  if (max == -std::numeric_limits<float>::infinity()) {              // fully masked
    std::fill(probs, probs + cols, 0.0f);
    return;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < cols; ++c) {
    const float e = vec_exp(v[c] - max);
    probs[c] = e;
    sum += e;
  }
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) probs[c] = probs[c] / sum;
}

// dlogits (cols) = probs * (g - sum(g * probs)) for one row; g may alias dlogits.
inline void softmax_backward_row(float* dlogits, const float* g, const float* probs, int64_t cols) {
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int64_t c = 0; c < cols; ++c) dot += g[c] * probs[c];
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) dlogits[c] = probs[c] * (g[c] - dot);
}

}  // namespace

// probs, logits (rows, cols); mask (rows / rows_per_mask, cols) or nullptr
void softmax_forward(float* probs, const float* logits, const float* mask, int64_t rows, int64_t cols,
                     int64_t rows_per_mask) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const float* mask_row = mask != nullptr ? mask + (r / rows_per_mask) * cols : nullptr;
    softmax_row(probs + r * cols, logits + r * cols, mask_row, cols);
  }
}

// dlogits, dprobs, probs (rows, cols)
void softmax_backward(float* dlogits, const float* dprobs, const float* probs, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r)
    softmax_backward_row(dlogits + r * cols, dprobs + r * cols, probs + r * cols, cols);
}

// out, probs, logits (rows, cols); mask (rows / rows_per_mask, cols) or nullptr.
// out = clip((zeta - gamma) p + gamma, 0, 1) with p = softmax(logits + mask), kept unclipped in probs.
void clipped_softmax_forward(float* out, float* probs, const float* logits, const float* mask, int64_t rows,
                             int64_t cols, int64_t rows_per_mask, float gamma, float zeta) {
  const float stretch = zeta - gamma;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const float* mask_row = mask != nullptr ? mask + (r / rows_per_mask) * cols : nullptr;
    float* p = probs + r * cols;
    float* out_row = out + r * cols;
    softmax_row(p, logits + r * cols, mask_row, cols);
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) out_row[c] = std::min(std::max(std::fma(stretch, p[c], gamma), 0.0f), 1.0f);
  }
}

// dlogits, dout, probs (rows, cols). With u = (zeta - gamma) p + gamma, the clip passes the gradient where
// 0 <= u <= 1 and blocks it where u is strictly outside [0, 1] (docs/design.md); then the softmax Jacobian:
//   g = (zeta - gamma) dout [0 <= u <= 1],  dlogits = p (g - sum(g p)).
void clipped_softmax_backward(float* dlogits, const float* dout, const float* probs, int64_t rows, int64_t cols,
                              float gamma, float zeta) {
  const float stretch = zeta - gamma;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = probs + r * cols;
    const float* dout_row = dout + r * cols;
    float* dl = dlogits + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) {
      const float u = std::fma(stretch, p[c], gamma);
      dl[c] = keep_if((u >= 0.0f) & (u <= 1.0f), stretch * dout_row[c]);  // g, kept in dlogits
    }
    softmax_backward_row(dl, dl, p, cols);
  }
}

}  // namespace bertforge::cpu
