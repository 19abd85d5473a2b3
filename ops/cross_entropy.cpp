// Cross-entropy op: forward and backward side by side. The forward keeps the
// per-row logsumexp so the backward needs one pass over the logits.
#include "ops/cross_entropy.h"

#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge {

namespace {

// Returns the number of rows whose target is not ignore_index; throws, naming
// the first target outside [0, classes) that is not ignore_index.
int64_t count_kept_targets(const Tensor& targets, int64_t classes, int64_t ignore_index) {
  const Tensor host = targets.to(Device::cpu()).contiguous();
  const int64_t* target = host.data<int64_t>();
  int64_t kept = 0;
  for (int64_t r = 0; r < host.numel(); ++r) {
    if (target[r] == ignore_index) continue;
    BF_CHECK(target[r] >= 0 && target[r] < classes, "cross_entropy: target ", target[r], " of row ", r,
             " is outside [0, ", classes, ") and is not the ignore index ", ignore_index);
    ++kept;
  }
  return kept;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  check_dtype("cross_entropy", "logits", logits);
  check_dtype("cross_entropy", "targets", targets, DType::kI64);
  check_dim("cross_entropy", "logits", logits, 2);
  check_shape("cross_entropy", "targets", targets, {logits.size(0)});
  check_same_device("cross_entropy", logits, targets);
  const int64_t rows = logits.size(0), classes = logits.size(1);
  const int64_t kept = count_kept_targets(targets, classes, ignore_index);
  const Device device = logits.device();
  const Tensor logitsc = logits.contiguous().detach(), targetsc = targets.contiguous().detach();
  Tensor loss_rows = Tensor::empty({rows}, DType::kF32, device);
  Tensor lse = Tensor::empty({rows}, DType::kF32, device);
  BF_KERNEL(device, cross_entropy_forward)(loss_rows.data<float>(), lse.data<float>(), logitsc.data<float>(),
                                           targetsc.data<int64_t>(), rows, classes, ignore_index);
  // The mean over kept rows, summed in double on the host (ignored rows hold 0).
  double total = 0.0;
  for (float row_loss : loss_rows.to(Device::cpu()).to_float_vector()) total += row_loss;
  const float mean_loss = kept > 0 ? static_cast<float>(total / static_cast<double>(kept)) : 0.0f;
  Tensor out = Tensor::full({}, mean_loss, DType::kF32, device);
  return autograd::record(
      "cross_entropy", out, {logits, targets},
      [logitsc, targetsc, lse, rows, classes, kept, ignore_index](const Tensor& dout) {
        if (kept == 0) return std::vector<Tensor>{Tensor::zeros({rows, classes}, DType::kF32, dout.device()), Tensor()};
        // d(mean)/d(loss_r) = 1 / kept for every kept row.
        const float dloss_per_row = dout.to(Device::cpu()).item<float>() / static_cast<float>(kept);
        Tensor dlogits = Tensor::empty({rows, classes}, DType::kF32, dout.device());
        BF_KERNEL(dout.device(), cross_entropy_backward)(dlogits.data<float>(), logitsc.data<float>(),
                                                         lse.data<float>(), targetsc.data<int64_t>(), rows, classes,
                                                         ignore_index, dloss_per_row);
        return std::vector<Tensor>{dlogits, Tensor()};
      });
}

}  // namespace bertforge
