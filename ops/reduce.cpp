// Sum and mean reductions: forward and backward side by side.
//
// Every reduction becomes one kernel call: the reduced dims are permuted to
// the front and the tensor is viewed as (reduced, kept), then sum_rows adds
// the rows. The backward of a sum broadcasts the gradient back (expand).
#include "ops/reduce.h"

#include <algorithm>

#include "autograd/node.h"
#include "ops/elementwise.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge {
namespace {

// Sums x over the dims marked in `reduce`, returning shape `kept_shape`
// (the kept dims in order). Not recorded.
Tensor sum_dims_raw(const Tensor& x, const std::vector<bool>& reduce, const Shape& kept_shape) {
  std::vector<int64_t> order;
  int64_t reduced_count = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (reduce[d]) {
      order.push_back(d);
      reduced_count *= x.size(d);
    }
  }
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!reduce[d]) order.push_back(d);
  }
  const Tensor rows = x.permute(order).contiguous();
  Tensor out = Tensor::empty(kept_shape, DType::kF32, x.device());
  BF_KERNEL(x.device(), sum_rows)(out.data<float>(), rows.data<float>(), reduced_count, out.numel());
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_dtype("sum", "x", x);
  std::vector<bool> reduce(x.dim(), false);
  for (int64_t d : dims) reduce[wrap_dim(d, x.dim())] = true;
  Shape kept_shape, keepdim_shape;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!reduce[d]) kept_shape.push_back(x.size(d));
    keepdim_shape.push_back(reduce[d] ? 1 : x.size(d));
  }
  Tensor out = sum_dims_raw(x, reduce, kept_shape);
  if (keepdim) out = out.view(keepdim_shape);
  return autograd::record("sum", out, {x}, [keepdim_shape, x_shape = x.shape()](const Tensor& dout) {
    return std::vector<Tensor>{dout.reshape(keepdim_shape).expand(x_shape).contiguous()};
  });
}

Tensor sum(const Tensor& x) {
  std::vector<int64_t> all(x.dim());
  for (int64_t d = 0; d < x.dim(); ++d) all[d] = d;
  return sum(x, all);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  int64_t count = 1;
  for (int64_t d : dims) count *= x.size(d);
  return scale(sum(x, dims, keepdim), 1.0f / static_cast<float>(std::max<int64_t>(count, 1)));
}

Tensor mean(const Tensor& x) { return scale(sum(x), 1.0f / static_cast<float>(std::max<int64_t>(x.numel(), 1))); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  // Dims that broadcasting added in front, and dims of size 1 that it stretched.
  const int64_t extra = x.dim() - static_cast<int64_t>(shape.size());
  BF_CHECK(extra >= 0, "sum_to: cannot reduce ", x.shape_str(), " to ", shape_to_string(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < extra || (shape[d - extra] == 1 && x.size(d) != 1)) dims.push_back(d);
  }
  return sum(x, dims, /*keepdim=*/false).reshape(shape);
}

Tensor sum_of_squares(const std::vector<Tensor>& tensors) {
  if (tensors.empty()) return Tensor::zeros({});
  const Device device = tensors.front().device();
  std::vector<Tensor> contiguous;
  std::vector<const float*> pointers;
  std::vector<int64_t> sizes;
  for (const Tensor& t : tensors) {
    check_dtype("sum_of_squares", "tensor", t);
    check_same_device("sum_of_squares", tensors.front(), t);
    contiguous.push_back(t.contiguous());
    pointers.push_back(contiguous.back().data<float>());
    sizes.push_back(t.numel());
  }
  const int64_t chunks = multi_tensor_chunks(sizes.data(), static_cast<int64_t>(sizes.size()));
  if (chunks == 0) return Tensor::zeros({}, DType::kF32, device);
  Tensor partials = Tensor::empty({chunks}, DType::kF32, device);
  BF_KERNEL(device, sum_of_squares_chunks)(partials.data<float>(), pointers.data(), sizes.data(),
                                           static_cast<int64_t>(sizes.size()));
  return sum(partials);
}

}  // namespace bertforge
