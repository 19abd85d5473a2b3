// Softmax over the last dim with an optional additive mask, and the clipped softmax of "Quantizable Transformers"
// (Bondarenko et al. 2023): the CPU kernels, then the ops, forward and backward side by side. The CUDA kernels are
// in cuda/softmax.cu.
//
// Conventions shared by all four kernels:
// - Numerically stable: the row max of logits + mask is subtracted before exponentiating; exp(-inf) is 0.
// - A row whose every entry is -inf (fully masked) gets probability 0 everywhere (PyTorch gives NaN).
//   Its gradient is then 0 too, since backward multiplies by the probabilities.
// - p = e / sum(e) by division, so 0 <= p <= 1 exactly: clipped softmax with gamma = 0, zeta = 1 never
//   clips and is bit-for-bit softmax, forward and backward.
// - NaN logits give a NaN row.
#include "ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "autograd/node.h"
#include "ops/cpu/vec_math.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

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
BF_REGISTER_KERNEL(DeviceType::kCPU, softmax_forward);

// dlogits, dprobs, probs (rows, cols)
void softmax_backward(float* dlogits, const float* dprobs, const float* probs, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r)
    softmax_backward_row(dlogits + r * cols, dprobs + r * cols, probs + r * cols, cols);
}
BF_REGISTER_KERNEL(DeviceType::kCPU, softmax_backward);

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
BF_REGISTER_KERNEL(DeviceType::kCPU, clipped_softmax_forward);

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
BF_REGISTER_KERNEL(DeviceType::kCPU, clipped_softmax_backward);

}  // namespace bertforge::cpu

namespace bertforge {

namespace {

// Checks x (..., T) and returns the number of rows when viewed as (rows, T).
int64_t check_input(const char* op, const Tensor& x) {
  check_dtype(op, "x", x);
  BF_CHECK(x.dim() >= 1, op, ": x must have at least one dim, got ", x.shape_str());
  return x.size(-1) > 0 ? x.numel() / x.size(-1) : 0;
}

// The kernels' rows_per_mask for `mask` against x (see softmax.h for the accepted shapes):
// x's rows use mask row r / rows_per_mask.
int64_t rows_per_mask_for(const char* op, const Tensor& x, const Tensor& mask) {
  check_dtype(op, "mask", mask);
  check_same_device(op, x, mask);
  const int64_t ndim = x.dim();
  BF_CHECK(mask.dim() >= 1 && mask.dim() <= ndim, op, ": mask ", mask.shape_str(), " has more dims than x ",
           x.shape_str(), " or none");
  Shape padded(ndim - mask.dim(), 1);
  padded.insert(padded.end(), mask.shape().begin(), mask.shape().end());
  BF_CHECK(padded.back() == x.size(-1), op, ": mask ", mask.shape_str(), " must end in x's last dim ", x.size(-1),
           " (x ", x.shape_str(), ")");
  int64_t k = 0;  // leading dims [0, k) equal x's; the rest must be 1
  while (k < ndim - 1 && padded[k] == x.size(k)) ++k;
  int64_t rows_per_mask = 1;
  for (int64_t d = k; d < ndim - 1; ++d) {
    BF_CHECK(padded[d] == 1, op, ": mask ", mask.shape_str(), " cannot be applied to x ", x.shape_str(),
             ": its leading dims must equal x's up to some dim and be 1 after it, e.g. (B,1,1,T) for x (B,H,T,T);"
             " expand the mask to x's shape");
    rows_per_mask *= x.size(d);
  }
  return std::max<int64_t>(rows_per_mask, 1);
}

}  // namespace

Tensor softmax(const Tensor& x, const Tensor& mask) {
  const int64_t rows = check_input("softmax", x), cols = x.size(-1);
  const int64_t rows_per_mask = mask.defined() ? rows_per_mask_for("softmax", x, mask) : 1;
  const Tensor xc = x.contiguous();
  const Tensor maskc = mask.defined() ? mask.contiguous() : Tensor();
  const float* mask_data = maskc.defined() ? maskc.data<float>() : nullptr;
  Tensor probs = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), softmax_forward)(probs.data<float>(), xc.data<float>(), mask_data, rows, cols, rows_per_mask);
  // The softmax Jacobian needs only the output.
  return autograd::record("softmax", probs, {x}, [probs = probs.detach(), rows, cols](const Tensor& dprobs) {
    const Tensor dprobsc = dprobs.contiguous();
    Tensor dx = Tensor::empty(probs.shape(), DType::kF32, probs.device());
    BF_KERNEL(probs.device(), softmax_backward)(dx.data<float>(), dprobsc.data<float>(), probs.data<float>(), rows,
                                                cols);
    return std::vector<Tensor>{dx};
  });
}

Tensor clipped_softmax(const Tensor& x, const Tensor& mask, float gamma, float zeta) {
  const int64_t rows = check_input("clipped_softmax", x), cols = x.size(-1);
  BF_CHECK(std::isfinite(gamma) && std::isfinite(zeta) && zeta > gamma,
           "clipped_softmax: need finite zeta > gamma, got gamma ", gamma, ", zeta ", zeta);
  const int64_t rows_per_mask = mask.defined() ? rows_per_mask_for("clipped_softmax", x, mask) : 1;
  const Tensor xc = x.contiguous();
  const Tensor maskc = mask.defined() ? mask.contiguous() : Tensor();
  const float* mask_data = maskc.defined() ? maskc.data<float>() : nullptr;
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  Tensor probs = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), clipped_softmax_forward)(out.data<float>(), probs.data<float>(), xc.data<float>(), mask_data,
                                                 rows, cols, rows_per_mask, gamma, zeta);
  // Backward needs the unclipped probabilities: they give both the Jacobian and where the clip was active.
  return autograd::record("clipped_softmax", out, {x}, [probs, rows, cols, gamma, zeta](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(probs.shape(), DType::kF32, probs.device());
    BF_KERNEL(probs.device(), clipped_softmax_backward)(dx.data<float>(), doutc.data<float>(), probs.data<float>(),
                                                        rows, cols, gamma, zeta);
    return std::vector<Tensor>{dx};
  });
}

float clipped_softmax_gamma_from_alpha(float alpha, int64_t seq_len) {
  BF_CHECK(seq_len > 0, "clipped_softmax_gamma_from_alpha: seq_len must be positive, got ", seq_len);
  return -alpha / static_cast<float>(seq_len);
}

}  // namespace bertforge
