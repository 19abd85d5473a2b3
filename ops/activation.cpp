// Activation ops: forward and backward side by side (kernels in ops/cpu/activation.cpp).
#include "ops/activation.h"

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/autocast.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge {

Tensor gelu(const Tensor& x) {
  check_dtype("gelu", "x", x);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), gelu_forward)(out.data<float>(), xc.data<float>(), x.numel());
  // gelu' needs the input (in 16 bits under autocasting, ops/autocast.h).
  const bool need_dx = autograd::requires_grad(x) && autograd::GradMode::is_enabled();
  const Tensor kept = need_dx ? kept_for_backward(xc) : Tensor();
  return autograd::record("gelu", out, {x}, [kept](const Tensor& dout) {
    const Tensor x = widened_for_backward(kept);
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(x.shape(), DType::kF32, x.device());
    BF_KERNEL(x.device(), gelu_backward)(dx.data<float>(), x.data<float>(), doutc.data<float>(), x.numel());
    return std::vector<Tensor>{dx};
  });
}

Tensor tanh(const Tensor& x) {
  check_dtype("tanh", "x", x);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), tanh_forward)(out.data<float>(), xc.data<float>(), x.numel());
  // tanh' = 1 - out^2 needs only the output.
  return autograd::record("tanh", out, {x}, [out = out.detach()](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(out.shape(), DType::kF32, out.device());
    BF_KERNEL(out.device(), tanh_backward)(dx.data<float>(), out.data<float>(), doutc.data<float>(), out.numel());
    return std::vector<Tensor>{dx};
  });
}

Tensor sigmoid(const Tensor& x) {
  check_dtype("sigmoid", "x", x);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), sigmoid_forward)(out.data<float>(), xc.data<float>(), x.numel());
  // sigmoid' = out (1 - out) needs only the output.
  return autograd::record("sigmoid", out, {x}, [out = out.detach()](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(out.shape(), DType::kF32, out.device());
    BF_KERNEL(out.device(), sigmoid_backward)(dx.data<float>(), out.data<float>(), doutc.data<float>(),
                                              out.numel());
    return std::vector<Tensor>{dx};
  });
}

}  // namespace bertforge
