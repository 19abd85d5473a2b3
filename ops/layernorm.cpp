// LayerNorm over the last dim: the CPU kernels, then the op, forward and backward side by side. The CUDA kernels
// are in cuda/layernorm.cu.
//
// Statistics as in PyTorch: mean, biased variance, rstd = 1 / sqrt(var + eps). The variance is
// computed in two passes over the row (mean first, then the mean of squared deviations), which
// stays accurate when |mean| >> std; a row is small enough (C = 768 is 3 KiB) to stay in L1.
#include "ops/layernorm.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge::cpu {

namespace {

// Backward sums dweight/dbias over row chunks of this fixed size, then adds the chunks in order:
// the result does not depend on the number of threads.
constexpr int64_t kRowsPerChunk = 32;

// sum(v) and sum((v - m)^2) over a row of n. The row is split into four quarters summed side by side: four
// independent accumulator chains instead of one, so the adds are not serialised by their latency.
inline float row_sum(const float* v, int64_t n) {
  const int64_t q = n / 4;
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t c = 0; c < q; ++c) {
    s0 += v[c];
    s1 += v[c + q];
    s2 += v[c + 2 * q];
    s3 += v[c + 3 * q];
  }
  float sum = (s0 + s1) + (s2 + s3);
  for (int64_t c = 4 * q; c < n; ++c) sum += v[c];
  return sum;
}

inline float row_sum_sq_dev(const float* v, float m, int64_t n) {
  const int64_t q = n / 4;
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t c = 0; c < q; ++c) {
    const float d0 = v[c] - m, d1 = v[c + q] - m, d2 = v[c + 2 * q] - m, d3 = v[c + 3 * q] - m;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  float sum = (s0 + s1) + (s2 + s3);
  for (int64_t c = 4 * q; c < n; ++c) sum += (v[c] - m) * (v[c] - m);
  return sum;
}

}  // namespace

// x, out (rows, cols); weight, bias (cols); mean, rstd (rows)
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* weight, const float* bias,
                       int64_t rows, int64_t cols, float eps) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x_row = x + r * cols;
    float* out_row = out + r * cols;
    const float m = row_sum(x_row, cols) / static_cast<float>(cols);
    const float s = 1.0f / std::sqrt(row_sum_sq_dev(x_row, m, cols) / static_cast<float>(cols) + eps);
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) out_row[c] = (x_row[c] - m) * s * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = s;
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, layernorm_forward);

// With xhat = (x - mean) rstd and g = dout * weight (per row):
//   dx      = rstd (g - mean(g) - xhat mean(g xhat))
//   dweight = sum over rows of dout xhat,  dbias = sum over rows of dout
// dx (rows, cols), dweight, dbias (cols) are written, not accumulated.
void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout, const float* x, const float* weight,
                        const float* mean, const float* rstd, int64_t rows, int64_t cols) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  // Per chunk: dweight partial sums (cols), then dbias partial sums (cols).
  std::unique_ptr<float[]> partial(new float[2 * chunks * cols]);
  const bool parallel = rows * cols > kParallelThreshold;

#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    float* dw = partial.get() + 2 * chunk * cols;
    float* db = dw + cols;
    std::fill(dw, dw + 2 * cols, 0.0f);
    const int64_t row_end = std::min(rows, (chunk + 1) * kRowsPerChunk);
    for (int64_t r = chunk * kRowsPerChunk; r < row_end; ++r) {
      const float* x_row = x + r * cols;
      const float* dout_row = dout + r * cols;
      float* dx_row = dx + r * cols;
      const float m = mean[r], s = rstd[r];
      float sum_g = 0.0f, sum_g_xhat = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_g_xhat)
      for (int64_t c = 0; c < cols; ++c) {
        const float xhat = (x_row[c] - m) * s;
        const float g = dout_row[c] * weight[c];
        sum_g += g;
        sum_g_xhat += g * xhat;
        dw[c] += dout_row[c] * xhat;
        db[c] += dout_row[c];
      }
      const float mean_g = sum_g / static_cast<float>(cols);
      const float mean_g_xhat = sum_g_xhat / static_cast<float>(cols);
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) {
        const float xhat = (x_row[c] - m) * s;
        dx_row[c] = s * (dout_row[c] * weight[c] - mean_g - xhat * mean_g_xhat);
      }
    }
  }

  // Reduce the chunks in order, each thread owning a block of columns.
  constexpr int64_t kColBlock = 64;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t block = 0; block < (cols + kColBlock - 1) / kColBlock; ++block) {
    const int64_t begin = block * kColBlock, end = std::min(cols, begin + kColBlock);
    std::fill(dweight + begin, dweight + end, 0.0f);
    std::fill(dbias + begin, dbias + end, 0.0f);
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const float* dw = partial.get() + 2 * chunk * cols;
      const float* db = dw + cols;
#pragma omp simd
      for (int64_t c = begin; c < end; ++c) {
        dweight[c] += dw[c];
        dbias[c] += db[c];
      }
    }
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, layernorm_backward);

}  // namespace bertforge::cpu

namespace bertforge {

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  check_dtype("layer_norm", "x", x);
  check_dtype("layer_norm", "weight", weight);
  check_dtype("layer_norm", "bias", bias);
  check_same_device("layer_norm", x, weight);
  check_same_device("layer_norm", x, bias);
  BF_CHECK(x.dim() >= 1, "layer_norm: x must have at least one dim, got ", x.shape_str());
  const int64_t cols = x.size(-1);
  BF_CHECK(cols > 0, "layer_norm: the normalised dim of x ", x.shape_str(), " is empty");
  check_shape("layer_norm", "weight", weight, {cols});
  check_shape("layer_norm", "bias", bias, {cols});
  BF_CHECK(eps >= 0.0f, "layer_norm: eps must be >= 0, got ", eps);
  const int64_t rows = x.numel() / cols;

  const Tensor xc = x.contiguous(), wc = weight.contiguous(), bc = bias.contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  Tensor mean = Tensor::empty({rows}, DType::kF32, x.device());
  Tensor rstd = Tensor::empty({rows}, DType::kF32, x.device());
  BF_KERNEL(x.device(), layernorm_forward)(out.data<float>(), mean.data<float>(), rstd.data<float>(), xc.data<float>(),
                                           wc.data<float>(), bc.data<float>(), rows, cols, eps);
  // Backward recomputes xhat from x and the saved mean and rstd (one float per row each) instead of storing it.
  auto backward = [x = xc.detach(), weight = wc.detach(), mean, rstd, rows, cols](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(x.shape(), DType::kF32, x.device());
    Tensor dweight = Tensor::empty({cols}, DType::kF32, x.device());
    Tensor dbias = Tensor::empty({cols}, DType::kF32, x.device());
    BF_KERNEL(x.device(), layernorm_backward)(dx.data<float>(), dweight.data<float>(), dbias.data<float>(),
                                              doutc.data<float>(), x.data<float>(), weight.data<float>(),
                                              mean.data<float>(), rstd.data<float>(), rows, cols);
    return std::vector<Tensor>{dx, dweight, dbias};
  };
  return autograd::record("layer_norm", out, {x, weight, bias}, std::move(backward));
}

}  // namespace bertforge
