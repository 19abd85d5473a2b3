// The AdamW update op: checks its tensors and hyperparameters, then one kernel call.
#include "ops/adamw.h"

#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge {

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& config, int64_t step) {
  // param, m, v are written in place, so they cannot be made contiguous by a copy.
  auto check_tensor = [&param](const char* name, const Tensor& t, bool in_place) {
    check_dtype("adamw_step", name, t);
    check_shape("adamw_step", name, t, param.shape());
    check_same_device("adamw_step", param, t);
    BF_CHECK(!in_place || t.is_contiguous(), "adamw_step: ", name,
             " is updated in place and must be contiguous, got strides ", shape_to_string(t.strides()),
             " for shape ", t.shape_str());
  };
  check_tensor("param", param, true);
  check_tensor("grad", grad, false);
  check_tensor("m", m, true);
  check_tensor("v", v, true);
  BF_CHECK(step >= 1, "adamw_step: step counts from 1, got ", step);
  BF_CHECK(config.beta1 >= 0.0f && config.beta1 < 1.0f && config.beta2 >= 0.0f && config.beta2 < 1.0f,
           "adamw_step: betas must be in [0, 1), got (", config.beta1, ", ", config.beta2, ")");
  BF_CHECK(config.lr >= 0.0f && config.eps >= 0.0f && config.weight_decay >= 0.0f,
           "adamw_step: lr, eps and weight_decay must be >= 0, got lr ", config.lr, ", eps ", config.eps,
           ", weight_decay ", config.weight_decay);
  const Tensor gradc = grad.contiguous();
  BF_KERNEL(param.device(), adamw_update)(param.data<float>(), gradc.data<float>(), m.data<float>(),
                                          v.data<float>(), param.numel(), config.lr, config.beta1, config.beta2,
                                          config.eps, config.weight_decay, step);
}

}  // namespace bertforge
