// Asymmetric activation quantization parameters and the fake-quantization kernel (see activation_quant.h).
#include "quant/activation_quant.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

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
  const float s = params.scale;
  const float z = static_cast<float>(params.zero_point);
  const float q_max = static_cast<float>(params.qmax());
  // round(a/s) + z and the clamp are exact in float: the codes are integers far below 2^24.
  constexpr int64_t kChunk = 1 << 15;
#pragma omp parallel for schedule(static) if (n > 4 * kChunk)
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t end = std::min(n, begin + kChunk);
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float q = std::nearbyint(in[i] / s) + z;
      const float clamped = q < 0.0f ? 0.0f : (q > q_max ? q_max : q);  // NaN falls through unchanged
      out[i] = (clamped - z) * s;
    }
  }
}

Tensor fake_quantize_activation(const Tensor& x, const ActivationQuantParams& params) {
  const Tensor host = x.detach().to(Device::cpu()).to(DType::kF32).contiguous();
  Tensor out = Tensor::empty(host.shape(), DType::kF32, Device::cpu());
  fake_quantize_activation(host.data<float>(), out.data<float>(), host.numel(), params);
  return out.to(x.device());
}

}  // namespace bertforge
