// Dropout and head dropout ops: forward and backward side by side. The
// backward captures only (p, key, sizes): it redraws the mask from the key.
#include "ops/dropout.h"

#include "autograd/node.h"
#include "core/philox.h"
#include "ops/head_dropout_mask.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge {

DropoutKey dropout_key(uint64_t seed, uint64_t step, uint64_t rank, uint64_t tensor_id, uint64_t micro_step) {
  return DropoutKey{seed, philox_stream_offset(step, rank, tensor_id, micro_step)};
}

Tensor dropout(const Tensor& x, float p, const DropoutKey& key, bool training) {
  check_dtype("dropout", "x", x);
  BF_CHECK(p >= 0.0f && p <= 1.0f, "dropout: p must be in [0, 1], got ", p);
  if (!training || p == 0.0f) return x;
  const Tensor xc = x.contiguous();
  const int64_t n = x.numel();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), dropout_forward)(out.data<float>(), xc.data<float>(), n, p, key.seed, key.offset);
  return autograd::record("dropout", out, {x}, [n, p, key](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(dout.shape(), DType::kF32, dout.device());
    BF_KERNEL(dout.device(), dropout_backward)(dx.data<float>(), doutc.data<float>(), n, p, key.seed, key.offset);
    return std::vector<Tensor>{dx};
  });
}

Tensor head_dropout(const Tensor& x, float p, const DropoutKey& key, bool training) {
  check_dtype("head_dropout", "x", x);
  BF_CHECK(x.dim() >= 2, "head_dropout: x must be (B, H, ...), got ", x.shape_str());
  // p == 1 would drop every head of every sample, which the redraw rule forbids.
  BF_CHECK(p >= 0.0f && p < 1.0f, "head_dropout: p must be in [0, 1), got ", p);
  const int64_t batch = x.size(0), heads = x.size(1);
  BF_CHECK(heads <= kHeadDropoutMaxHeads, "head_dropout: at most ", kHeadDropoutMaxHeads, " heads, got ", heads,
           " in x ", x.shape_str());
  if (!training || p == 0.0f) return x;
  const int64_t inner = batch * heads == 0 ? 0 : x.numel() / (batch * heads);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), head_dropout_forward)(out.data<float>(), xc.data<float>(), batch, heads, inner, p, key.seed,
                                              key.offset);
  return autograd::record("head_dropout", out, {x}, [batch, heads, inner, p, key](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(dout.shape(), DType::kF32, dout.device());
    BF_KERNEL(dout.device(), head_dropout_backward)(dx.data<float>(), doutc.data<float>(), batch, heads, inner, p,
                                                    key.seed, key.offset);
    return std::vector<Tensor>{dx};
  });
}

}  // namespace bertforge
