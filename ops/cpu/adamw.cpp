// CPU kernel for one AdamW step (see ops/kernels.h), in the order of
// operations of torch.optim.AdamW's single-tensor path (the one PyTorch uses
// on the CPU), so results agree with PyTorch to float rounding:
//   param *= 1 - lr * weight_decay
//   m      = beta1 * m + (1 - beta1) * grad
//   v      = beta2 * v + (1 - beta2) * grad^2
//   param -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// The bias corrections are computed in double, as Python does.
#include <cmath>

#include "ops/cpu/cpu_kernels.h"

namespace bertforge::cpu {

// param, grad, m, v (n); step counts from 1.
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int64_t step) {
  adamw_update_scaled(param, grad, 1.0f, m, v, n, lr, beta1, beta2, eps, weight_decay, step);
}

void adamw_update_scaled(float* param, const float* grad, float grad_scale, float* m, float* v, int64_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, int64_t step) {
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  const float m_weight = 1.0f - beta1, v_weight = 1.0f - beta2;
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] * grad_scale;  // exact for grad_scale 1
    const float m_i = beta1 * m[i] + m_weight * g;
    const float v_i = beta2 * v[i] + v_weight * g * g;
    const float denom = std::sqrt(v_i) / bias_correction2_sqrt + eps;
    param[i] = param[i] * decay - step_size * (m_i / denom);
    m[i] = m_i;
    v[i] = v_i;
  }
}

}  // namespace bertforge::cpu
