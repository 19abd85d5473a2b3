// Differentiable shape ops: the autograd-recorded versions of Tensor's views.
// Forward returns a view (no copy) where the layout allows; backward maps the
// gradient back to the input's shape.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace bertforge {

Tensor reshape(const Tensor& x, const Shape& shape);  // -1 infers one dim
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
// Elements [start, end) of `dim`.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end);
// A contiguous tensor with x's values (x itself when already contiguous).
Tensor contiguous(const Tensor& x);

}  // namespace bertforge
