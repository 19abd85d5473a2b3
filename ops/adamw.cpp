// The AdamW update ops, for one parameter and for a list of them: check the tensors and hyperparameters, then one
// kernel call.
#include "ops/adamw.h"

#include <cmath>

#include "ops/kernels.h"
#include "ops/op_checks.h"

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
