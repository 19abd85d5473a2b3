// Softmax and clipped softmax ops: forward and backward side by side (kernels in ops/cpu/softmax.cpp).
#include "ops/softmax.h"

#include <algorithm>
#include <cmath>

#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge {

namespace {

// Checks x (..., T) and returns the number of rows when viewed as (rows, T).
int64_t check_input(const char* op, const Tensor& x) {
  check_dtype(op, "x", x);
  BF_CHECK(x.dim() >= 1, op, ": x must have at least one dim, got ", x.shape_str());
  return x.size(-1) > 0 ? x.numel() / x.size(-1) : 0;
}

// The kernels' rows_per_mask for `mask` against x (see softmax.h for the accepted shapes):
// x's rows use mask row r / rows_per_mask.
int64_t rows_per_mask_for(const char* op, const Tensor& x, const Tensor& mask) {
  check_dtype(op, "mask", mask);
  check_same_device(op, x, mask);
  const int64_t ndim = x.dim();
  BF_CHECK(mask.dim() >= 1 && mask.dim() <= ndim, op, ": mask ", mask.shape_str(), " has more dims than x ",
           x.shape_str(), " or none");
  Shape padded(ndim - mask.dim(), 1);
  padded.insert(padded.end(), mask.shape().begin(), mask.shape().end());
  BF_CHECK(padded.back() == x.size(-1), op, ": mask ", mask.shape_str(), " must end in x's last dim ", x.size(-1),
           " (x ", x.shape_str(), ")");
  int64_t k = 0;  // leading dims [0, k) equal x's; the rest must be 1
  while (k < ndim - 1 && padded[k] == x.size(k)) ++k;
  int64_t rows_per_mask = 1;
  for (int64_t d = k; d < ndim - 1; ++d) {
    BF_CHECK(padded[d] == 1, op, ": mask ", mask.shape_str(), " cannot be applied to x ", x.shape_str(),
             ": its leading dims must equal x's up to some dim and be 1 after it, e.g. (B,1,1,T) for x (B,H,T,T);"
             " expand the mask to x's shape");
    rows_per_mask *= x.size(d);
  }
  return std::max<int64_t>(rows_per_mask, 1);
}

}  // namespace

Tensor softmax(const Tensor& x, const Tensor& mask) {
  const int64_t rows = check_input("softmax", x), cols = x.size(-1);
  const int64_t rows_per_mask = mask.defined() ? rows_per_mask_for("softmax", x, mask) : 1;
  const Tensor xc = x.contiguous();
  const Tensor maskc = mask.defined() ? mask.contiguous() : Tensor();
  const float* mask_data = maskc.defined() ? maskc.data<float>() : nullptr;
  Tensor probs = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), softmax_forward)(probs.data<float>(), xc.data<float>(), mask_data, rows, cols, rows_per_mask);
  // The softmax Jacobian needs only the output.
  return autograd::record("softmax", probs, {x}, [probs = probs.detach(), rows, cols](const Tensor& dprobs) {
    const Tensor dprobsc = dprobs.contiguous();
    Tensor dx = Tensor::empty(probs.shape(), DType::kF32, probs.device());
    BF_KERNEL(probs.device(), softmax_backward)(dx.data<float>(), dprobsc.data<float>(), probs.data<float>(), rows,
                                                cols);
    return std::vector<Tensor>{dx};
  });
}

Tensor clipped_softmax(const Tensor& x, const Tensor& mask, float gamma, float zeta) {
  const int64_t rows = check_input("clipped_softmax", x), cols = x.size(-1);
  BF_CHECK(std::isfinite(gamma) && std::isfinite(zeta) && zeta > gamma,
           "clipped_softmax: need finite zeta > gamma, got gamma ", gamma, ", zeta ", zeta);
  const int64_t rows_per_mask = mask.defined() ? rows_per_mask_for("clipped_softmax", x, mask) : 1;
  const Tensor xc = x.contiguous();
  const Tensor maskc = mask.defined() ? mask.contiguous() : Tensor();
  const float* mask_data = maskc.defined() ? maskc.data<float>() : nullptr;
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  Tensor probs = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), clipped_softmax_forward)(out.data<float>(), probs.data<float>(), xc.data<float>(), mask_data,
                                                 rows, cols, rows_per_mask, gamma, zeta);
  // Backward needs the unclipped probabilities: they give both the Jacobian and where the clip was active.
  return autograd::record("clipped_softmax", out, {x}, [probs, rows, cols, gamma, zeta](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(probs.shape(), DType::kF32, probs.device());
    BF_KERNEL(probs.device(), clipped_softmax_backward)(dx.data<float>(), doutc.data<float>(), probs.data<float>(),
                                                        rows, cols, gamma, zeta);
    return std::vector<Tensor>{dx};
  });
}

float clipped_softmax_gamma_from_alpha(float alpha, int64_t seq_len) {
  BF_CHECK(seq_len > 0, "clipped_softmax_gamma_from_alpha: seq_len must be positive, got ", seq_len);
  return -alpha / static_cast<float>(seq_len);
}

}  // namespace bertforge
