// Differentiable element-wise arithmetic: add, sub, mul with NumPy-style
// broadcasting, multiplication by a scalar, and adding a bias or multiplying by
// a per-channel scale over the last dim.
#pragma once

#include "core/tensor.h"

namespace bertforge {

// a, b: broadcastable shapes; the result has the broadcast shape.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
// s * x
Tensor scale(const Tensor& x, float s);
// x (..., C) + bias (C)
Tensor add_bias(const Tensor& x, const Tensor& bias);
// x (..., C) * s (C): a per-channel scale (as mul with broadcasting, in one pass)
Tensor scale_channels(const Tensor& x, const Tensor& s);

// The shape two shapes broadcast to (throws if incompatible).
Shape broadcast_shapes(const Shape& a, const Shape& b);

}  // namespace bertforge
