// Sum and mean reductions: the CPU kernels (sums of rows, and the per-chunk sums of squares behind the global
// gradient norm), then the ops, forward and backward side by side. The CUDA kernels are in cuda/elementwise.cu.
//
// Every reduction becomes one kernel call: the reduced dims are permuted to
// the front and the tensor is viewed as (reduced, kept), then sum_rows adds
// the rows. The backward of a sum broadcasts the gradient back (expand).
#include "ops/reduce.h"

#include <algorithm>
#include <vector>

#include "autograd/node.h"
#include "ops/elementwise.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge::cpu {

// out (cols) = sum over the rows of x (rows, cols): a bias gradient, or a whole-tensor sum with cols = 1.
void sum_rows(float* out, const float* x, int64_t rows, int64_t cols) {
  if (cols == 1) {  // a whole-tensor sum: threads share the rows, each adding in double (a float running sum
                    // of millions of terms drifts, and stops growing at all past 2^24 ones)
    double total = 0.0;
#pragma omp parallel for simd reduction(+ : total) if (parallel : rows > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) total += x[r];
    out[0] = static_cast<float>(total);
    return;
  }
  // Each thread owns a slice of columns and walks all rows: row-major reads
  // stay sequential within the slice and no reduction across threads is needed.
#pragma omp parallel if (rows * cols > kParallelThreshold)
  {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < cols; ++c) out[c] = 0.0f;
#pragma omp for schedule(static)
    for (int64_t block = 0; block < (cols + 63) / 64; ++block) {
      const int64_t begin = block * 64, end = std::min<int64_t>(begin + 64, cols);
      for (int64_t r = 0; r < rows; ++r) {
        const float* x_row = x + r * cols;
#pragma omp simd
        for (int64_t c = begin; c < end; ++c) out[c] += x_row[c];
      }
    }
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, sum_rows);

// partials (chunks): one sum of squares per kMultiTensorChunk elements of each tensor, accumulated in double and
// rounded once (the reference the GPU's float tree reduction is compared with).
void sum_of_squares_chunks(float* partials, const float* const* tensors, const int64_t* sizes, int64_t count) {
  struct Chunk {
    const float* x;
    int64_t n;
  };
  std::vector<Chunk> chunks;
  for (int64_t t = 0; t < count; ++t) {
    for (int64_t start = 0; start < sizes[t]; start += kMultiTensorChunk) {
      chunks.push_back({tensors[t] + start, std::min(kMultiTensorChunk, sizes[t] - start)});
    }
  }
  const int64_t total = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(dynamic) if (parallel : total > 1)
  for (int64_t c = 0; c < total; ++c) {
    double sum = 0.0;
    const float* x = chunks[c].x;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < chunks[c].n; ++i) sum += static_cast<double>(x[i]) * x[i];
    partials[c] = static_cast<float>(sum);
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, sum_of_squares_chunks);

}  // namespace bertforge::cpu

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

Tensor column_sums(const Tensor& x) {
  check_dtype("column_sums", "x", x);
  BF_CHECK(x.dim() >= 1, "column_sums: x must have at least one dim, got ", x.shape_str());
  const Tensor xc = x.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / std::max<int64_t>(cols, 1);
  Tensor out = Tensor::empty({cols}, DType::kF32, x.device());
  BF_KERNEL(x.device(), sum_rows)(out.data<float>(), xc.data<float>(), rows, cols);
  return out;
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
