// CUDA kernel of asymmetric fake quantization, its host launcher (the CPU kernel's signature) and its
// registration. CPU reference: quant/activation_quant.cpp; the scheme is quant/activation_quant.h's. One thread per
// element, in the CPU's operations: an IEEE division (nvcc's default -prec-div=true), rintf (round half to even,
// as std::nearbyint in the default rounding mode), then exact integer arithmetic in float: bit-identical.
#include <math.h>

#include <cstdint>

#include "cuda/portable.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kFakeQuantizeThreads = 256;

// out, x (n).
__global__ void fake_quantize_kernel(float* out, const float* x, int64_t n, float scale, float zero_point,
                                     float q_max) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float q = rintf(x[i] / scale) + zero_point;
  const float clamped = q < 0.0f ? 0.0f : (q > q_max ? q_max : q);  // NaN falls through unchanged
  out[i] = (clamped - zero_point) * scale;
}

inline void fake_quantize(float* out, const float* x, int64_t n, float scale, float zero_point, float q_max) {
  if (n == 0) return;
  BF_LAUNCH(fake_quantize_kernel, blocks_for(n, kFakeQuantizeThreads), kFakeQuantizeThreads, 0, out, x, n, scale,
            zero_point, q_max);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, fake_quantize);

}  // namespace bertforge::cuda
