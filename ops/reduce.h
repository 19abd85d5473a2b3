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

}  // namespace bertforge
