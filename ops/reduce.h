// Differentiable reductions: sum and mean, over everything or over dims.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace bertforge {

Tensor sum(const Tensor& x);   // 0-d
Tensor mean(const Tensor& x);  // 0-d
// Reduces `dims` (negative allowed); keepdim keeps them with size 1.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Sums a broadcast result back to `shape` (the gradient of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);
// x (..., cols) summed over every dim but the last: (cols). A bias gradient; not recorded by autograd.
Tensor column_sums(const Tensor& x);

// The sum over all `tensors` of sum(x^2), 0-d, on their device: one kernel call for the whole list (one launch per
// kMultiTensorGroup tensors on a GPU) of per-chunk sums, then their sum. The squared global norm of gradients.
// Every tensor f32 on one device; not recorded by autograd. An empty list gives 0 on the CPU.
Tensor sum_of_squares(const std::vector<Tensor>& tensors);

}  // namespace bertforge
