// Element-wise arithmetic ops: forward and backward side by side.
#include "ops/elementwise.h"

#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"
#include "ops/reduce.h"

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
  return autograd::record("add_bias", out, {x, bias}, [rows, cols](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dbias = Tensor::empty({cols}, DType::kF32, dout.device());
    BF_KERNEL(dout.device(), sum_rows)(dbias.data<float>(), doutc.data<float>(), rows, cols);
    return std::vector<Tensor>{dout, dbias};
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
                          [x = need_ds ? xc.detach() : Tensor(), s = sc.detach(), rows, cols](const Tensor& dout) {
                            Tensor ds;
                            if (x.defined()) {
                              const Tensor product = mul(dout, x).contiguous();
                              ds = Tensor::empty({cols}, DType::kF32, dout.device());
                              BF_KERNEL(dout.device(), sum_rows)(ds.data<float>(), product.data<float>(), rows, cols);
                            }
                            return std::vector<Tensor>{scale_channels(dout, s), ds};
                          });
}

}  // namespace bertforge
