// AdamW: the CPU kernels of one update step, for one tensor and for a list of them, then the ops, which check the
// tensors and hyperparameters and make one kernel call. The CUDA kernels are in cuda/adamw.cu.
//
// The CPU kernel follows the order of
// operations of torch.optim.AdamW's single-tensor path (the one PyTorch uses
// on the CPU), so results agree with PyTorch to float rounding:
//   param *= 1 - lr * weight_decay
//   m      = beta1 * m + (1 - beta1) * grad
//   v      = beta2 * v + (1 - beta2) * grad^2
//   param -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// The bias corrections are computed in double, as Python does.
#include "ops/adamw.h"

#include <cmath>

#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge::cpu {

namespace {

// adamw_update with the gradient grad * grad_scale (the product rounded to float, as scaling the gradient and then
// updating would): the building block of both kernels below.
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

}  // namespace

// param, grad, m, v (n); step counts from 1.
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int64_t step) {
  adamw_update_scaled(param, grad, 1.0f, m, v, n, lr, beta1, beta2, eps, weight_decay, step);
}
BF_REGISTER_KERNEL(DeviceType::kCPU, adamw_update);

// adamw_update on every tensor i with weight decay weight_decays[i] and gradient grads[i] * grad_scale; params,
// grads, m, v (count) point at tensors of sizes[i] elements.
void adamw_update_many(float* const* params, const float* const* grads, float* const* m, float* const* v,
                       const int64_t* sizes, const float* weight_decays, int64_t count, float grad_scale, float lr,
                       float beta1, float beta2, float eps, int64_t step) {
  for (int64_t t = 0; t < count; ++t) {
    adamw_update_scaled(params[t], grads[t], grad_scale, m[t], v[t], sizes[t], lr, beta1, beta2, eps,
                        weight_decays[t], step);
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, adamw_update_many);

}  // namespace bertforge::cpu

namespace bertforge {

namespace {

// param, m, v are written in place, so they cannot be made contiguous by a copy.
void check_tensors(const char* op, const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v) {
  auto check_tensor = [&](const char* name, const Tensor& t, bool in_place) {
    check_dtype(op, name, t);
    check_shape(op, name, t, param.shape());
    check_same_device(op, param, t);
    BF_CHECK(!in_place || t.is_contiguous(), op, ": ", name,
             " is updated in place and must be contiguous, got strides ", shape_to_string(t.strides()), " for shape ",
             t.shape_str());
  };
  check_tensor("param", param, true);
  check_tensor("grad", grad, false);
  check_tensor("m", m, true);
  check_tensor("v", v, true);
}

void check_config(const char* op, const AdamWConfig& config, int64_t step) {
  BF_CHECK(step >= 1, op, ": step counts from 1, got ", step);
  BF_CHECK(config.beta1 >= 0.0f && config.beta1 < 1.0f && config.beta2 >= 0.0f && config.beta2 < 1.0f, op,
           ": betas must be in [0, 1), got (", config.beta1, ", ", config.beta2, ")");
  BF_CHECK(config.lr >= 0.0f && config.eps >= 0.0f && config.weight_decay >= 0.0f, op,
           ": lr, eps and weight_decay must be >= 0, got lr ", config.lr, ", eps ", config.eps, ", weight_decay ",
           config.weight_decay);
}

}  // namespace

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& config, int64_t step) {
  check_tensors("adamw_step", param, grad, m, v);
  check_config("adamw_step", config, step);
  const Tensor gradc = grad.contiguous();
  BF_KERNEL(param.device(), adamw_update)(param.data<float>(), gradc.data<float>(), m.data<float>(),
                                          v.data<float>(), param.numel(), config.lr, config.beta1, config.beta2,
                                          config.eps, config.weight_decay, step);
}

void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& config, float grad_scale,
                     int64_t step) {
  check_config("adamw_step_many", config, step);
  BF_CHECK(std::isfinite(grad_scale), "adamw_step_many: gradient scale ", grad_scale, " is not finite");
  if (tensors.empty()) return;
  const Device device = tensors.front().param.device();
  std::vector<Tensor> grads;  // contiguous, alive until the call returns
  std::vector<float*> params, m, v;
  std::vector<const float*> grad_pointers;
  std::vector<int64_t> sizes;
  std::vector<float> weight_decays;
  for (const AdamWTensors& t : tensors) {
    check_tensors("adamw_step_many", t.param, t.grad, t.m, t.v);
    check_same_device("adamw_step_many", tensors.front().param, t.param);
    grads.push_back(t.grad.contiguous());
    params.push_back(t.param.data<float>());
    grad_pointers.push_back(grads.back().data<float>());
    m.push_back(t.m.data<float>());
    v.push_back(t.v.data<float>());
    sizes.push_back(t.param.numel());
    weight_decays.push_back(t.decay ? config.weight_decay : 0.0f);
  }
  BF_KERNEL(device, adamw_update_many)(params.data(), grad_pointers.data(), m.data(), v.data(), sizes.data(),
                                       weight_decays.data(), static_cast<int64_t>(tensors.size()), grad_scale,
                                       config.lr, config.beta1, config.beta2, config.eps, step);
}

}  // namespace bertforge
