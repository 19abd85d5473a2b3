// LayerNorm op: forward and backward side by side (kernels in ops/cpu/layernorm.cpp).
#include "ops/layernorm.h"

#include <utility>

#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge {

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  check_dtype("layer_norm", "x", x);
  check_dtype("layer_norm", "weight", weight);
  check_dtype("layer_norm", "bias", bias);
  check_same_device("layer_norm", x, weight);
  check_same_device("layer_norm", x, bias);
  BF_CHECK(x.dim() >= 1, "layer_norm: x must have at least one dim, got ", x.shape_str());
  const int64_t cols = x.size(-1);
  BF_CHECK(cols > 0, "layer_norm: the normalised dim of x ", x.shape_str(), " is empty");
  check_shape("layer_norm", "weight", weight, {cols});
  check_shape("layer_norm", "bias", bias, {cols});
  BF_CHECK(eps >= 0.0f, "layer_norm: eps must be >= 0, got ", eps);
  const int64_t rows = x.numel() / cols;

  const Tensor xc = x.contiguous(), wc = weight.contiguous(), bc = bias.contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  Tensor mean = Tensor::empty({rows}, DType::kF32, x.device());
  Tensor rstd = Tensor::empty({rows}, DType::kF32, x.device());
  BF_KERNEL(x.device(), layernorm_forward)(out.data<float>(), mean.data<float>(), rstd.data<float>(), xc.data<float>(),
                                           wc.data<float>(), bc.data<float>(), rows, cols, eps);
  // Backward recomputes xhat from x and the saved mean and rstd (one float per row each) instead of storing it.
  auto backward = [x = xc.detach(), weight = wc.detach(), mean, rstd, rows, cols](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(x.shape(), DType::kF32, x.device());
    Tensor dweight = Tensor::empty({cols}, DType::kF32, x.device());
    Tensor dbias = Tensor::empty({cols}, DType::kF32, x.device());
    BF_KERNEL(x.device(), layernorm_backward)(dx.data<float>(), dweight.data<float>(), dbias.data<float>(),
                                              doutc.data<float>(), x.data<float>(), weight.data<float>(),
                                              mean.data<float>(), rstd.data<float>(), rows, cols);
    return std::vector<Tensor>{dx, dweight, dbias};
  };
  return autograd::record("layer_norm", out, {x, weight, bias}, std::move(backward));
}

}  // namespace bertforge
