// CUDA kernel for one AdamW step, its host launcher (the signature of ops/kernels.h) and its
// registration. CPU reference: ops/cpu/adamw.cpp. The step's scalars (bias corrections in double, as
// the CPU and PyTorch compute them) are computed once on the host; each thread then updates
// one element in the CPU's order of operations:
//   param *= 1 - lr * weight_decay                 (decoupled weight decay, before the step)
//   m      = beta1 * m + (1 - beta1) * grad
//   v      = beta2 * v + (1 - beta2) * grad^2
//   param -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>

#include "cuda/kernels.h"
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

// param, grad, m, v (n): one AdamW step in place.
__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n, AdamWScalars s) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = grad[i];
  const float m_i = s.beta1 * m[i] + s.m_weight * g;
  const float v_i = s.beta2 * v[i] + s.v_weight * g * g;
  const float denom = sqrtf(v_i) / s.bias_correction2_sqrt + s.eps;
  param[i] = param[i] * s.decay - s.step_size * (m_i / denom);
  m[i] = m_i;
  v[i] = v_i;
}

// param, grad, m, v (n); step counts from 1.
inline void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, int64_t step) {
  if (n == 0) return;
  BF_LAUNCH(adamw_kernel, blocks_for(n, kAdamWThreads), kAdamWThreads, 0, param, grad, m, v, n,
            adamw_scalars(lr, beta1, beta2, eps, weight_decay, step));
}

void register_adamw_kernels(KernelTable& table) { table.adamw_update = &adamw_update; }

}  // namespace bertforge::cuda
