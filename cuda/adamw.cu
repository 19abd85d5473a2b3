// CUDA kernels for one AdamW step, of one tensor and of a list of them (one launch per group of tensors, see
// cuda/multi_tensor.cuh), their host launchers (the CPU kernels' signatures) and their registration. CPU
// reference: ops/adamw.cpp. The step's scalars (bias corrections in double, as
// the CPU and PyTorch compute them) are computed once on the host; each thread then updates
// one element in the CPU's order of operations:
//   param *= 1 - lr * weight_decay                 (decoupled weight decay, before the step)
//   m      = beta1 * m + (1 - beta1) * grad
//   v      = beta2 * v + (1 - beta2) * grad^2
//   param -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
#include <math.h>

#include <cmath>
#include <cstdint>

#include "cuda/multi_tensor.cuh"
#include "cuda/portable.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kAdamWThreads = 256;

// The per-step scalars of the update, rounded to float as the CPU rounds them.
struct AdamWScalars {
  float beta1, beta2;
  float m_weight, v_weight;     // 1 - beta1, 1 - beta2
  float step_size;              // lr / (1 - beta1^step)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^step)
  float eps;
  float decay;  // 1 - lr * weight_decay
};

inline AdamWScalars adamw_scalars(float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step) {
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  AdamWScalars s;
  s.beta1 = beta1;
  s.beta2 = beta2;
  s.m_weight = 1.0f - beta1;
  s.v_weight = 1.0f - beta2;
  s.step_size = static_cast<float>(lr / bias_correction1);
  s.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  s.eps = eps;
  s.decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  return s;
}

// One element's update, with gradient g and weight-decay factor `decay`.
__device__ __forceinline__ void adamw_element(float& param, float& m, float& v, float g, const AdamWScalars& s,
                                              float decay) {
  const float m_i = s.beta1 * m + s.m_weight * g;
  const float v_i = s.beta2 * v + s.v_weight * g * g;
  const float denom = sqrtf(v_i) / s.bias_correction2_sqrt + s.eps;
  param = param * decay - s.step_size * (m_i / denom);
  m = m_i;
  v = v_i;
}

// param, grad, m, v (n): one AdamW step in place.
__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n, AdamWScalars s) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  adamw_element(param[i], m[i], v[i], grad[i], s, s.decay);
}

// The tensors of one multi-tensor launch: the chunk table and, per tensor, its four arrays and decay factor.
struct AdamWGroup {
  MultiTensorChunks chunks;
  float* param[kMultiTensorGroup];
  const float* grad[kMultiTensorGroup];
  float* m[kMultiTensorGroup];
  float* v[kMultiTensorGroup];
  float decay[kMultiTensorGroup];  // 1 - lr * weight_decay of each tensor
};

// One block per chunk of the group's tensors (cuda/multi_tensor.cuh); the gradient scaled by grad_scale.
__global__ void adamw_many_kernel(AdamWGroup group, AdamWScalars s, float grad_scale) {
  const ChunkRange chunk = chunk_of_block(group.chunks, blockIdx.x);
  const int t = chunk.tensor;
  for (int64_t i = chunk.begin + threadIdx.x; i < chunk.end; i += blockDim.x) {
    adamw_element(group.param[t][i], group.m[t][i], group.v[t][i], group.grad[t][i] * grad_scale, s,
                  group.decay[t]);
  }
}

// param, grad, m, v (n); step counts from 1.
inline void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, int64_t step) {
  if (n == 0) return;
  BF_LAUNCH(adamw_kernel, blocks_for(n, kAdamWThreads), kAdamWThreads, 0, param, grad, m, v, n,
            adamw_scalars(lr, beta1, beta2, eps, weight_decay, step));
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, adamw_update);

// Lists of `count` tensors (host arrays of device pointers); one launch per kMultiTensorGroup tensors.
inline void adamw_update_many(float* const* params, const float* const* grads, float* const* m, float* const* v,
                              const int64_t* sizes, const float* weight_decays, int64_t count, float grad_scale,
                              float lr, float beta1, float beta2, float eps, int64_t step) {
  const AdamWScalars s = adamw_scalars(lr, beta1, beta2, eps, /*weight_decay=*/0.0f, step);
  for_each_tensor_group(sizes, count, [&](int64_t first, const MultiTensorChunks& chunks, int64_t) {
    AdamWGroup group;
    group.chunks = chunks;
    for (int t = 0; t < chunks.count; ++t) {
      group.param[t] = params[first + t];
      group.grad[t] = grads[first + t];
      group.m[t] = m[first + t];
      group.v[t] = v[first + t];
      group.decay[t] = adamw_scalars(lr, beta1, beta2, eps, weight_decays[first + t], step).decay;
    }
    BF_LAUNCH(adamw_many_kernel, static_cast<unsigned int>(chunks.first_chunk[chunks.count]), kAdamWThreads, 0,
              group, s, grad_scale);
  });
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, adamw_update_many);

}  // namespace bertforge::cuda
