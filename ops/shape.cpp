// Differentiable views: forward and backward side by side.
#include "ops/shape.h"

#include "autograd/node.h"

namespace bertforge {

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor out = x.reshape(shape);
  if (out.shares_storage_with(x)) out = out.detach();  // a fresh handle for the graph node
  return autograd::record("reshape", out, {x}, [x_shape = x.shape()](const Tensor& dout) {
    return std::vector<Tensor>{dout.reshape(x_shape)};
  });
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor out = x.permute(dims);
  return autograd::record("permute", out, {x}, [dims, ndim = x.dim()](const Tensor& dout) {
    std::vector<int64_t> inverse(ndim);
    for (int64_t i = 0; i < ndim; ++i) inverse[wrap_dim(dims[i], ndim)] = i;
    return std::vector<Tensor>{dout.permute(inverse)};
  });
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  Tensor out = x.transpose(dim0, dim1);
  return autograd::record("transpose", out, {x}, [dim0, dim1](const Tensor& dout) {
    return std::vector<Tensor>{dout.transpose(dim0, dim1)};
  });
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end) {
  Tensor out = x.slice(dim, start, end);
  const int64_t d = wrap_dim(dim, x.dim());
  const int64_t begin = start < 0 ? start + x.size(d) : start;
  return autograd::record("slice", out, {x}, [x_shape = x.shape(), d, begin](const Tensor& dout) {
    // The gradient is zero outside the slice.
    Tensor dx = Tensor::zeros(x_shape, dout.dtype(), dout.device());
    dx.slice(d, begin, begin + dout.size(d)).copy_(dout);
    return std::vector<Tensor>{dx};
  });
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  return autograd::record("contiguous", x.contiguous(), {x},
                          [](const Tensor& dout) { return std::vector<Tensor>{dout}; });
}

}  // namespace bertforge
