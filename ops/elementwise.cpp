// Element-wise arithmetic and bias rows: the CPU kernels, then the ops, forward and backward side by side. The CUDA
// kernels are in cuda/elementwise.cu.
#include "ops/elementwise.h"

#include <algorithm>

#include "autograd/engine.h"
#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"
#include "ops/reduce.h"

namespace bertforge::cpu {

// out[i] = a[i] op b[i], i < n; out may alias an input.
void binary(BinaryOp op, float* out, const float* a, const float* b, int64_t n) {
  switch (op) {
    case BinaryOp::kAdd:
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
      break;
    case BinaryOp::kSub:
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] - b[i];
      break;
    case BinaryOp::kMul:
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
      break;
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, binary);

// out[i] = s * x[i], i < n
void scale(float* out, const float* x, float s, int64_t n) {
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) out[i] = s * x[i];
}
BF_REGISTER_KERNEL(DeviceType::kCPU, scale);

namespace {

// out (rows, cols) = f(x, v[c]) element by element, v (cols) a vector along the rows; f a lambda, so that it inlines
// into the vectorised inner loop.
template <typename PerColumn>
void map_rows(float* out, const float* x, const float* v, int64_t rows, int64_t cols, PerColumn f) {
#pragma omp parallel for if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x_row = x + r * cols;
    float* out_row = out + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) out_row[c] = f(x_row[c], v[c]);
  }
}

}  // namespace

// out (rows, cols) = x (rows, cols) + bias (cols)
void add_bias(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
  map_rows(out, x, bias, rows, cols, [](float a, float b) { return a + b; });
}
BF_REGISTER_KERNEL(DeviceType::kCPU, add_bias);

// out (rows, cols) = x (rows, cols) * s (cols): a per-channel scale
void scale_channels(float* out, const float* x, const float* s, int64_t rows, int64_t cols) {
  map_rows(out, x, s, rows, cols, [](float a, float b) { return a * b; });
}
BF_REGISTER_KERNEL(DeviceType::kCPU, scale_channels);

}  // namespace bertforge::cpu

namespace bertforge {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    // Align from the right; a missing dim acts as size 1.
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    BF_CHECK(da == db || da == 1 || db == 1, "cannot broadcast ", shape_to_string(a), " with ",
             shape_to_string(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// out = a op b after broadcasting both to a common shape.
Tensor binary_forward(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_dtype(name, "a", a);
  check_dtype(name, "b", b);
  check_same_device(name, a, b);
  const Shape shape = broadcast_shapes(a.shape(), b.shape());
  const Tensor a_full = a.expand(shape).contiguous();
  const Tensor b_full = b.expand(shape).contiguous();
  Tensor out = Tensor::empty(shape, DType::kF32, a.device());
  BF_KERNEL(a.device(), binary)(op, out.data<float>(), a_full.data<float>(), b_full.data<float>(), out.numel());
  return out;
}

// acc += grad (f32, same device, grad contiguous) with the device's `binary` add: how autograd accumulates
// gradients on a GPU (on the CPU it adds them itself, autograd/engine.cpp).
void accumulate_with_kernels(Tensor& acc, const Tensor& grad) {
  BF_CHECK(acc.dtype() == DType::kF32 && grad.dtype() == DType::kF32 && acc.is_contiguous(),
           "gradient accumulation on ", acc.device().str(), " supports contiguous f32, got ", acc.str());
  BF_KERNEL(acc.device(), binary)(BinaryOp::kAdd, acc.data<float>(), acc.data<float>(), grad.data<float>(),
                                  acc.numel());
}
[[maybe_unused]] const bool gpu_accumulation_registered =
    (autograd::register_accumulate(DeviceType::kCUDA, &accumulate_with_kernels), true);

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kAdd, "add", a, b);
  return autograd::record("add", out, {a, b}, [a_shape = a.shape(), b_shape = b.shape()](const Tensor& dout) {
    return std::vector<Tensor>{sum_to(dout, a_shape), sum_to(dout, b_shape)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kSub, "sub", a, b);
  return autograd::record("sub", out, {a, b}, [a_shape = a.shape(), b_shape = b.shape()](const Tensor& dout) {
    return std::vector<Tensor>{sum_to(dout, a_shape), scale(sum_to(dout, b_shape), -1.0f)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kMul, "mul", a, b);
  const bool need_da = autograd::requires_grad(a), need_db = autograd::requires_grad(b);
  // d(a*b)/da = b and d(a*b)/db = a: each side saves the other operand.
  return autograd::record("mul", out, {a, b},
                          [a = need_db ? a.detach() : Tensor(), b = need_da ? b.detach() : Tensor(),
                           a_shape = a.shape(), b_shape = b.shape()](const Tensor& dout) {
                            Tensor da = b.defined() ? sum_to(mul(dout, b), a_shape) : Tensor();
                            Tensor db = a.defined() ? sum_to(mul(dout, a), b_shape) : Tensor();
                            return std::vector<Tensor>{da, db};
                          });
}

Tensor scale(const Tensor& x, float s) {
  check_dtype("scale", "x", x);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), scale)(out.data<float>(), xc.data<float>(), s, x.numel());
  return autograd::record("scale", out, {x}, [s](const Tensor& dout) { return std::vector<Tensor>{scale(dout, s)}; });
}

Tensor add_bias(const Tensor& x, const Tensor& bias) {
  check_dtype("add_bias", "x", x);
  check_dtype("add_bias", "bias", bias);
  check_same_device("add_bias", x, bias);
  BF_CHECK(x.dim() >= 1 && bias.dim() == 1 && bias.size(0) == x.size(-1), "add_bias: bias ", bias.shape_str(),
           " does not match the last dim of x ", x.shape_str());
  const Tensor xc = x.contiguous(), bc = bias.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / std::max<int64_t>(cols, 1);
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), add_bias)(out.data<float>(), xc.data<float>(), bc.data<float>(), rows, cols);
  return autograd::record("add_bias", out, {x, bias}, [](const Tensor& dout) {
    return std::vector<Tensor>{dout, column_sums(dout)};
  });
}

Tensor scale_channels(const Tensor& x, const Tensor& s) {
  check_dtype("scale_channels", "x", x);
  check_dtype("scale_channels", "s", s);
  check_same_device("scale_channels", x, s);
  BF_CHECK(x.dim() >= 1 && s.dim() == 1 && s.size(0) == x.size(-1), "scale_channels: s ", s.shape_str(),
           " does not match the last dim of x ", x.shape_str());
  const Tensor xc = x.contiguous(), sc = s.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / std::max<int64_t>(cols, 1);
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), scale_channels)(out.data<float>(), xc.data<float>(), sc.data<float>(), rows, cols);
  const bool need_ds = autograd::requires_grad(s);
  // dx = dout * s; ds = column sums of dout * x.
  return autograd::record("scale_channels", out, {x, s},
                          [x = need_ds ? xc.detach() : Tensor(), s = sc.detach()](const Tensor& dout) {
                            Tensor ds;
                            if (x.defined()) {
                              ds = column_sums(mul(dout, x));
                            }
                            return std::vector<Tensor>{scale_channels(dout, s), ds};
                          });
}

}  // namespace bertforge
