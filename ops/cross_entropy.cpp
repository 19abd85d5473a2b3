// Cross-entropy over logits with an ignore index: the CPU kernels, then the op, forward and backward side by side.
// The forward keeps the per-row logsumexp so the backward needs one pass over the logits. The CUDA kernels are in
// cuda/cross_entropy.cu.
//
// Per row: lse = max + log(sum_c exp(logit_c - max)), stable for any logit
// magnitude since every exponent is <= 0. Rows whose target is ignore_index
// are skipped entirely (in MLM about 85% of rows): loss and lse are written
// as 0 and their gradient rows as 0. A row holding a NaN logit gets NaN loss,
// lse and gradient. Targets are trusted to be valid: the op checks them.
//
// exp is the vectorisable polynomial of ops/cpu/vec_math.h: with libm's expf,
// a scalar call, these kernels were 4-8x slower.
#include "ops/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "autograd/node.h"
#include "ops/cpu/vec_math.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge::cpu {

// loss, lse (rows); logits (rows, classes); targets (rows)
void cross_entropy_forward(float* loss, float* lse, const float* logits, const int64_t* targets, int64_t rows,
                           int64_t classes, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (rows * classes > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] == ignore_index) {
      loss[r] = 0.0f;
      lse[r] = 0.0f;
      continue;
    }
    const float* row = logits + r * classes;
    float max_logit = -INFINITY;
    uint32_t any_nan = 0;  // the max below may skip NaNs, so they are caught here
#pragma omp simd reduction(max : max_logit) reduction(| : any_nan)
    for (int64_t c = 0; c < classes; ++c) {
      max_logit = max_logit > row[c] ? max_logit : row[c];  // std::fmax would be a libm call
      any_nan |= (FloatBits(row[c]) & 0x7FFFFFFFu) > 0x7F800000u;
    }
    if (any_nan) {
      loss[r] = lse[r] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    double sum = 0.0;  // double: 30k terms of up to 1 each
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < classes; ++c) sum += vec_exp(row[c] - max_logit);
    const float log_sum = static_cast<float>(std::log(sum));
    lse[r] = max_logit + log_sum;
    // (max - logit[target]) + log_sum rather than lse - logit[target]: no cancellation
    // error of the size of ulp(lse) when the logits are large and the loss is small.
    loss[r] = (max_logit - row[targets[r]]) + log_sum;
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, cross_entropy_forward);

// dlogits (rows, classes) = dloss_per_row * (softmax(logits) - onehot(target)), 0 on ignored rows.
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int64_t* targets,
                            int64_t rows, int64_t classes, int64_t ignore_index, float dloss_per_row) {
#pragma omp parallel for schedule(static) if (rows * classes > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    float* drow = dlogits + r * classes;
    if (targets[r] == ignore_index) {
      std::memset(drow, 0, static_cast<size_t>(classes) * sizeof(float));
      continue;
    }
    const float row_lse = lse[r];
    if (std::isnan(row_lse)) {  // the row held a NaN logit: its whole gradient is NaN
      std::fill(drow, drow + classes, row_lse);
      continue;
    }
    const float* row = logits + r * classes;
#pragma omp simd
    for (int64_t c = 0; c < classes; ++c) drow[c] = dloss_per_row * vec_exp(row[c] - row_lse);
    drow[targets[r]] -= dloss_per_row;
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, cross_entropy_backward);

}  // namespace bertforge::cpu

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
