// CUDA kernels for cross-entropy over logits with an ignore index, their host launchers (the
// CPU kernels' signatures) and their registration. CPU reference: ops/cross_entropy.cpp.
//
// One CUDA block per row (30522 classes for BERT's vocabulary), threads striding over adjacent
// classes. Forward reads the row once: each thread keeps an online (max, sum of exp(x - max))
// pair, rescaling its sum when its max grows; the block then combines the pairs with a block
// max and a block sum. Ignored rows write loss = lse = 0 (forward) and a zero gradient row
// (backward) without reading their logits. A NaN logit makes the row's loss, lse and
// gradient NaN, as on the CPU.
#include <math.h>

#include <cstdint>

#include "cuda/portable.cuh"
#include "cuda/reduce.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kCrossEntropyMaxThreads = 512;   // 60 classes per thread for BERT's vocabulary
constexpr int kCrossEntropyLoadsInFlight = 4;  // loads each forward thread issues before using them

// Adds logit x to a running (max, sum of exp(logit - max)), rescaling the sum when the max grows.
// -inf adds 0 and is skipped, so that no exp(-inf - (-inf)) = NaN arises; a NaN makes the sum NaN.
__device__ __forceinline__ void online_logsumexp_add(float x, float& running_max, float& running_sum) {
  if (x == -INFINITY) return;
  if (x > running_max) {
    running_sum = running_sum * expf(running_max - x) + 1.0f;
    running_max = x;
  } else {
    running_sum += expf(x - running_max);
  }
}

// loss, lse (rows); logits (rows, classes); targets (rows). CUDA block r handles row r.
__global__ void cross_entropy_forward_kernel(float* loss, float* lse, const float* logits, const int64_t* targets,
                                             int64_t classes, int64_t ignore_index) {
  __shared__ float scratch[kWarpSize];
  const int64_t row = blockIdx.x;
  const int64_t target = targets[row];
  if (target == ignore_index) {
    if (threadIdx.x == 0) loss[row] = lse[row] = 0.0f;
    return;
  }
  const float* row_logits = logits + row * classes;
  // This thread's max and sum of exp(x - thread_max) over its classes, read a few at a time so
  // that enough loads are outstanding to cover memory latency.
  float thread_max = -INFINITY, thread_sum = 0.0f;
  for (int64_t base = threadIdx.x; base < classes; base += kCrossEntropyLoadsInFlight * blockDim.x) {
    float x[kCrossEntropyLoadsInFlight];
    for (int k = 0; k < kCrossEntropyLoadsInFlight; ++k) {
      const int64_t c = base + k * blockDim.x;
      x[k] = c < classes ? row_logits[c] : -INFINITY;
    }
    for (int k = 0; k < kCrossEntropyLoadsInFlight; ++k) online_logsumexp_add(x[k], thread_max, thread_sum);
  }
  const float row_max = block_max(thread_max, scratch);
  // A thread without finite logits has thread_sum 0 and thread_max -inf: it adds 0.
  const float scaled_sum = thread_sum == 0.0f ? 0.0f : thread_sum * expf(thread_max - row_max);
  const float log_sum = logf(block_sum(scaled_sum, scratch));
  if (threadIdx.x == 0) {
    lse[row] = row_max + log_sum;
    // (max - logit[target]) + log_sum, as on the CPU: no cancellation error of ulp(lse) size.
    loss[row] = (row_max - row_logits[target]) + log_sum;
  }
}

// dlogits (rows, classes) = dloss_per_row * (exp(logits - lse) - onehot(target)); zero rows for
// ignored targets. CUDA block r handles row r.
__global__ void cross_entropy_backward_kernel(float* dlogits, const float* logits, const float* lse,
                                              const int64_t* targets, int64_t classes, int64_t ignore_index,
                                              float dloss_per_row) {
  const int64_t row = blockIdx.x;
  const int64_t target = targets[row];
  float* row_dlogits = dlogits + row * classes;
  if (target == ignore_index) {
    for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) row_dlogits[c] = 0.0f;
    return;
  }
  const float* row_logits = logits + row * classes;
  const float row_lse = lse[row];  // NaN for a row holding a NaN logit: every exp below is NaN too
  for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) {
    const float grad = dloss_per_row * expf(row_logits[c] - row_lse);
    row_dlogits[c] = c == target ? grad - dloss_per_row : grad;
  }
}

// A whole number of warps (at least one), one class each, up to kCrossEntropyMaxThreads.
inline int cross_entropy_threads(int64_t classes) {
  const int64_t threads = (classes + kWarpSize - 1) / kWarpSize * kWarpSize;
  if (threads < kWarpSize) return kWarpSize;
  return threads < kCrossEntropyMaxThreads ? static_cast<int>(threads) : kCrossEntropyMaxThreads;
}

inline void cross_entropy_forward(float* loss, float* lse, const float* logits, const int64_t* targets, int64_t rows,
                                  int64_t classes, int64_t ignore_index) {
  if (rows == 0) return;
  BF_LAUNCH(cross_entropy_forward_kernel, static_cast<unsigned int>(rows), cross_entropy_threads(classes), 0, loss, lse,
            logits, targets, classes, ignore_index);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, cross_entropy_forward);

inline void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int64_t* targets,
                                   int64_t rows, int64_t classes, int64_t ignore_index, float dloss_per_row) {
  if (rows * classes == 0) return;
  BF_LAUNCH(cross_entropy_backward_kernel, static_cast<unsigned int>(rows), cross_entropy_threads(classes), 0, dlogits,
            logits, lse, targets, classes, ignore_index, dloss_per_row);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, cross_entropy_backward);

}  // namespace bertforge::cuda
