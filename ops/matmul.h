// Differentiable matrix products through the one GEMM entry point:
// matmul (2-D and batched, with transposes) and linear (x W^T + b).
#pragma once

#include "core/tensor.h"

namespace bertforge {

// op(a) @ op(b) where op transposes the last two dims when asked.
//   a: (..., M, K), or (..., K, M) if trans_a
//   b: (..., K, N), or (..., N, K) if trans_b; b may also be 2-D (shared by every batch)
//   returns (..., M, N); the batch dims of a and b must be equal.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// x (..., in) @ weight (out, in)^T + bias (out): the Linear layer. bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace bertforge
