// Asymmetric activation quantization parameters, and fake quantization, static per tensor or dynamic per token (see
// activation_quant.h): the CPU kernel, then the functions that call it, or its CUDA twin (cuda/fake_quantize.cu).
#include "quant/activation_quant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/check.h"
#include "ops/kernels.h"

namespace bertforge::cpu {

// out, x (n): out[i] = (clamp(round_half_even(x[i] / scale) + zero_point, 0, q_max) - zero_point) * scale; a NaN
// stays NaN. zero_point and q_max are integers held in floats. out may alias x.
void fake_quantize(float* out, const float* x, int64_t n, float scale, float zero_point, float q_max) {
  // round(x/s) + z and the clamp are exact in float: the codes are integers far below 2^24.
  constexpr int64_t kChunk = 1 << 15;
#pragma omp parallel for schedule(static) if (n > 4 * kChunk)
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t end = std::min(n, begin + kChunk);
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float q = std::nearbyint(x[i] / scale) + zero_point;
      const float clamped = q < 0.0f ? 0.0f : (q > q_max ? q_max : q);  // NaN falls through unchanged
      out[i] = (clamped - zero_point) * scale;
    }
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, fake_quantize);

}  // namespace bertforge::cpu

namespace bertforge {

ActivationQuantParams ActivationQuantParams::from_range(const ActivationRange& range, int bits) {
  BF_CHECK(bits >= 2 && bits <= 16, "activation quantization: bits must be in [2, 16], got ", bits);
  BF_CHECK(std::isfinite(range.min) && std::isfinite(range.max) && range.min <= range.max,
           "activation quantization: the range must be finite with min <= max, got [", range.min, ", ", range.max,
           "]");
  ActivationQuantParams p;
  p.bits = bits;
  // Widen a zero-width range to include 0 (file comment); [0, 0] stays as it is.
  const double lo = range.min == range.max ? std::min(0.0, static_cast<double>(range.min)) : range.min;
  const double hi = range.min == range.max ? std::max(0.0, static_cast<double>(range.max)) : range.max;
  if (hi == lo) {  // [0, 0]
    p.scale = 1.0f;
    p.zero_point = 0;
    return p;
  }
  p.scale = static_cast<float>((hi - lo) / static_cast<double>(p.qmax()));
  if (!(p.scale > 0.0f)) p.scale = std::numeric_limits<float>::denorm_min();  // a width below float's reach
  const double z = std::nearbyint(-lo / static_cast<double>(p.scale));
  BF_CHECK(std::fabs(z) < 2147483647.0, "activation quantization: the zero point of [", range.min, ", ",
           range.max, "] overflows int32 (scale ", p.scale, ")");
  p.zero_point = static_cast<int32_t>(z);
  return p;
}

void fake_quantize_activation(const float* in, float* out, int64_t n, const ActivationQuantParams& params) {
  cpu::fake_quantize(out, in, n, params.scale, static_cast<float>(params.zero_point),
                     static_cast<float>(params.qmax()));
}

Tensor fake_quantize_activation(const Tensor& x, const ActivationQuantParams& params) {
  const Tensor in = x.detach().to(DType::kF32).contiguous();
  Tensor out = Tensor::empty(in.shape(), DType::kF32, in.device());
  BF_KERNEL(in.device(), fake_quantize)(out.data<float>(), in.data<float>(), in.numel(), params.scale,
                                        static_cast<float>(params.zero_point), static_cast<float>(params.qmax()));
  return out;
}

Tensor fake_quantize_per_token(const Tensor& x, int bits) {
  BF_CHECK(x.dim() >= 1, "fake_quantize_per_token: x must have a last dim, got ", x.shape_str());
  const Tensor in = x.detach().to(DType::kF32).to(Device::cpu()).contiguous();
  Tensor out = Tensor::empty(in.shape(), DType::kF32, Device::cpu());
  const int64_t K = in.size(-1), rows = K == 0 ? 0 : in.numel() / K;
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  // The rows' ranges (OpenMP over rows; nothing throws inside), then their parameters, then the kernel per row.
  std::vector<ActivationRange> ranges(static_cast<size_t>(rows));
  int64_t first_infinite_row = rows;
#pragma omp parallel for schedule(static) reduction(min : first_infinite_row)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < K; ++k) {
      const float v = src[r * K + k];
      if (std::isinf(v)) first_infinite_row = std::min(first_infinite_row, r);
      if (std::isnan(v)) continue;
      ranges[r].min = std::min(ranges[r].min, v);
      ranges[r].max = std::max(ranges[r].max, v);
    }
  }
  BF_CHECK(first_infinite_row == rows, "fake_quantize_per_token: row ", first_infinite_row, " of ", x.shape_str(),
           " holds an infinity: a per-token range must be finite");
  std::vector<ActivationQuantParams> params(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) params[r] = ActivationQuantParams::from_range(ranges[r], bits);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) fake_quantize_activation(src + r * K, dst + r * K, K, params[r]);
  return out.to(x.device());
}

}  // namespace bertforge
