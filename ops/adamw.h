// AdamW (Loshchilov & Hutter, decoupled weight decay): one in-place update of
// a parameter and its two moment buffers, with torch.optim.AdamW semantics.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace bertforge {

// Defaults are torch.optim.AdamW's. BERT's original recipe uses eps = 1e-6:
// set it explicitly. The trainer passes weight_decay = 0 for the parameters
// that BERT does not decay (biases, LayerNorm weights).
struct AdamWConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;
};

// One step; `step` counts from 1 (the bias corrections use it). m and v start
// as zeros. param, m, v are updated in place and must be contiguous f32 tensors
// of param's shape on param's device; grad has the same shape, dtype and device.
// With t = step:
//   param *= 1 - lr * weight_decay
//   m = beta1 m + (1 - beta1) grad,  v = beta2 v + (1 - beta2) grad^2
//   param -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// Not recorded by autograd.
void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& config, int64_t step);

// One parameter of adamw_step_many: its tensors (as for adamw_step) and whether weight decay applies to it.
struct AdamWTensors {
  Tensor param, grad, m, v;
  bool decay = true;
};

// adamw_step on every entry (weight decay config.weight_decay where `decay`, else 0), each gradient multiplied
// by grad_scale first (global-norm clipping's factor; the product is rounded to float, exactly as scaling the
// gradient and then calling adamw_step). One kernel call for the whole list: on a GPU one launch per
// kMultiTensorGroup parameters instead of one per parameter. All entries on one device.
void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& config, float grad_scale,
                     int64_t step);

}  // namespace bertforge
