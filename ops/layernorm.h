// Differentiable LayerNorm over the last dim, as torch.nn.functional.layer_norm with an affine weight and bias.
#pragma once

#include "core/tensor.h"

namespace bertforge {

// x (..., C), weight (C), bias (C) -> (..., C):
//   (x - mean) / sqrt(var + eps) * weight + bias, mean and biased variance over the last dim.
// BERT uses eps = 1e-12. Gradients flow to x, weight and bias.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);

}  // namespace bertforge
