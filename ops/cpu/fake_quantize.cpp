// CPU kernel of asymmetric fake quantization (see ops/kernels.h; the scheme is quant/activation_quant.h's).
#include <algorithm>
#include <cmath>

#include "ops/cpu/cpu_kernels.h"

namespace bertforge::cpu {

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

}  // namespace bertforge::cpu
