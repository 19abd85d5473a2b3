// Differentiable activations: exact (erf) GELU, as in BERT's FFN and MLM head, tanh (the pooler), and sigmoid
// (the gates of gated attention).
#pragma once

#include "core/tensor.h"

namespace bertforge {

// gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), element-wise; any shape.
Tensor gelu(const Tensor& x);
// tanh(x), element-wise; any shape. Backward uses the output: 1 - tanh(x)^2.
Tensor tanh(const Tensor& x);
// sigmoid(x) = 1 / (1 + exp(-x)), element-wise; any shape. Backward uses the output: out (1 - out).
Tensor sigmoid(const Tensor& x);

}  // namespace bertforge
