// CUDA kernels for softmax over the last dim with an optional additive mask, and the clipped softmax of
// "Quantizable Transformers" (Bondarenko et al. 2023), forward and backward, with host launchers of the
// CPU kernels' signatures (CPU reference and conventions: ops/softmax.cpp). As there: the row max is subtracted
// before exponentiating, a fully masked row (every entry -inf) gets probability 0, p = e / sum by an IEEE
// division (so 0 <= p <= 1), and a NaN logit gives a NaN row.
//
// A row is handled by a team of threads: one warp for rows of up to kMaxWarpRowCols (attention rows are 128-512
// long: 4-16 values per lane, reductions by shuffles only), the whole block for longer rows (a 30522-wide
// vocabulary row: 60 values per thread). Thread k of the team handles columns k, k + team size, ..., so every
// warp load is 128 contiguous bytes. The forward finds the row max and the sum of exp(v - max), then writes p,
// recomputing exp rather than storing and re-reading it; only the first read of the row comes from DRAM:
// - a warp row (a few KiB) stays in L1: one pass for the max, one for the sum, one to write (measured on an H100
//   this beats the online form below, whose rescaling costs more exps than an L1 pass costs);
// - a block row (120 KiB for the vocabulary) is re-read from L2: max and sum come from one pass, an online
//   softmax (each thread keeps its running max and its sum scaled to it; the team rescales the threads' sums to
//   the row max), 20% faster there.
#include <math.h>

#include <cstdint>

#include "cuda/portable.cuh"
#include "cuda/reduce.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kSoftmaxWarpRowThreads = 256;  // 8 rows per block, one per warp
constexpr int kSoftmaxWarpRowsPerBlock = kSoftmaxWarpRowThreads / kWarpSize;
constexpr int kSoftmaxBlockRowThreads = 512;  // one row per block
constexpr int64_t kMaxWarpRowCols = 1024;

// One warp per row: row blockIdx.x * (warps per block) + warp. All lanes of a warp leave together when the row
// is past the end, so the full-warp shuffles see every lane.
struct WarpPerRow {
  __device__ explicit WarpPerRow(float* /*scratch*/) {}
  __device__ int64_t row() const {
    return static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarpSize) + threadIdx.x / kWarpSize;
  }
  __device__ int rank() const { return threadIdx.x % kWarpSize; }
  __device__ int size() const { return kWarpSize; }
  __device__ float sum(float value) const { return warp_sum(value); }
  __device__ float max(float value) const { return warp_max(value); }
  static constexpr bool kOnlineSoftmax = false;
};

// One block per row: row blockIdx.x; reductions through `scratch` (32 floats of shared memory).
struct BlockPerRow {
  float* scratch;
  __device__ explicit BlockPerRow(float* scratch_) : scratch(scratch_) {}
  __device__ int64_t row() const { return blockIdx.x; }
  __device__ int rank() const { return threadIdx.x; }
  __device__ int size() const { return blockDim.x; }
  __device__ float sum(float value) const { return block_sum(value, scratch); }
  __device__ float max(float value) const { return block_max(value, scratch); }
  static constexpr bool kOnlineSoftmax = true;
};

// The max of a row and the sum of exp(v - max) over it; value(c) is v at column c.
struct RowMaxAndSum {
  float max, sum;
};
template <typename Team, typename Value>
__device__ __forceinline__ RowMaxAndSum row_max_and_sum(const Team& team, const Value& value, int64_t cols) {
  if constexpr (Team::kOnlineSoftmax) {
    // This thread's max m of its values, and the sum of exp(v - m) over them. A -inf adds exactly 0 (exp(-inf -
    // -inf) would be NaN); a NaN is never > m, so it adds NaN to the sum and the row becomes NaN, as on the CPU.
    float thread_max = -INFINITY, thread_sum = 0.0f;
    for (int64_t c = team.rank(); c < cols; c += team.size()) {
      const float v = value(c);
      if (v > thread_max) {
        thread_sum = thread_sum * expf(thread_max - v) + 1.0f;
        thread_max = v;
      } else {
        thread_sum += v == -INFINITY ? 0.0f : expf(v - thread_max);
      }
    }
    const float max = team.max(thread_max);
    return {max, team.sum(thread_sum * expf(thread_max - max))};  // NaN for a fully masked row: not used
  } else {
    float max = -INFINITY;
    for (int64_t c = team.rank(); c < cols; c += team.size()) max = fmaxf(max, value(c));
    max = team.max(max);
    float sum = 0.0f;
    for (int64_t c = team.rank(); c < cols; c += team.size()) sum += expf(value(c) - max);
    return {max, team.sum(sum)};  // NaN for a fully masked row: not used
  }
}

// clip(u, 0, 1), keeping a NaN (as the CPU's std::min(std::max(u, 0), 1) does; fminf/fmaxf would drop it).
__device__ __forceinline__ float clip_to_unit(float u) { return u < 0.0f ? 0.0f : (u > 1.0f ? 1.0f : u); }

// probs, logits (rows, cols); mask (rows / rows_per_mask, cols) or nullptr. probs = softmax(logits + mask);
// when out (rows, cols) is not nullptr, also out = clip((zeta - gamma) probs + gamma, 0, 1).
template <typename Team>
__global__ void softmax_forward_kernel(float* out, float* probs, const float* logits, const float* mask,
                                       int64_t rows, int64_t cols, int64_t rows_per_mask, float gamma, float zeta) {
  __shared__ float scratch[kWarpSize];
  const Team team(scratch);
  const int64_t row = team.row();
  if (row >= rows) return;  // the whole team leaves together
  const float* logit_row = logits + row * cols;
  const float* mask_row = mask != nullptr ? mask + (row / rows_per_mask) * cols : nullptr;
  const auto value = [&](int64_t c) { return mask_row != nullptr ? logit_row[c] + mask_row[c] : logit_row[c]; };

  const RowMaxAndSum stats = row_max_and_sum(team, value, cols);
  const bool fully_masked = stats.max == -INFINITY;

  float* prob_row = probs + row * cols;
  float* out_row = out != nullptr ? out + row * cols : nullptr;
  const float stretch = zeta - gamma;
  for (int64_t c = team.rank(); c < cols; c += team.size()) {
    const float p = fully_masked ? 0.0f : expf(value(c) - stats.max) / stats.sum;
    prob_row[c] = p;
    if (out_row != nullptr) out_row[c] = clip_to_unit(fmaf(stretch, p, gamma));
  }
}

// dlogits, dout, probs (rows, cols); dlogits may alias dout. With g = dout (plain softmax), or for the clipped
// softmax g = (zeta - gamma) dout where u = (zeta - gamma) probs + gamma is inside [0, 1] and 0 where the clip
// is active: dlogits = probs (g - sum(g probs)).
template <typename Team>
__global__ void softmax_backward_kernel(float* dlogits, const float* dout, const float* probs, int64_t rows,
                                        int64_t cols, bool clipped, float gamma, float zeta) {
  __shared__ float scratch[kWarpSize];
  const Team team(scratch);
  const int64_t row = team.row();
  if (row >= rows) return;  // the whole team leaves together
  const float* dout_row = dout + row * cols;
  const float* prob_row = probs + row * cols;
  const float stretch = zeta - gamma;
  const auto gradient_in = [&](int64_t c) {
    if (!clipped) return dout_row[c];
    const float u = fmaf(stretch, prob_row[c], gamma);
    return u >= 0.0f && u <= 1.0f ? stretch * dout_row[c] : 0.0f;
  };

  float dot = 0.0f;
  for (int64_t c = team.rank(); c < cols; c += team.size()) dot += gradient_in(c) * prob_row[c];
  dot = team.sum(dot);
  float* dlogit_row = dlogits + row * cols;
  for (int64_t c = team.rank(); c < cols; c += team.size()) dlogit_row[c] = prob_row[c] * (gradient_in(c) - dot);
}

// The forward of both softmaxes: out is nullptr for the plain one.
inline void launch_softmax_forward(float* out, float* probs, const float* logits, const float* mask, int64_t rows,
                                   int64_t cols, int64_t rows_per_mask, float gamma, float zeta) {
  if (rows == 0 || cols == 0) return;
  if (cols <= kMaxWarpRowCols) {
    BF_LAUNCH(softmax_forward_kernel<WarpPerRow>, blocks_for(rows, kSoftmaxWarpRowsPerBlock), kSoftmaxWarpRowThreads,
              0, out, probs, logits, mask, rows, cols, rows_per_mask, gamma, zeta);
  } else {
    BF_LAUNCH(softmax_forward_kernel<BlockPerRow>, static_cast<unsigned int>(rows), kSoftmaxBlockRowThreads, 0, out,
              probs, logits, mask, rows, cols, rows_per_mask, gamma, zeta);
  }
}

// The backward of both softmaxes.
inline void launch_softmax_backward(float* dlogits, const float* dout, const float* probs, int64_t rows,
                                    int64_t cols, bool clipped, float gamma, float zeta) {
  if (rows == 0 || cols == 0) return;
  if (cols <= kMaxWarpRowCols) {
    BF_LAUNCH(softmax_backward_kernel<WarpPerRow>, blocks_for(rows, kSoftmaxWarpRowsPerBlock),
              kSoftmaxWarpRowThreads, 0, dlogits, dout, probs, rows, cols, clipped, gamma, zeta);
  } else {
    BF_LAUNCH(softmax_backward_kernel<BlockPerRow>, static_cast<unsigned int>(rows), kSoftmaxBlockRowThreads, 0,
              dlogits, dout, probs, rows, cols, clipped, gamma, zeta);
  }
}

// probs, logits (rows, cols); mask (rows / rows_per_mask, cols) or nullptr
inline void softmax_forward(float* probs, const float* logits, const float* mask, int64_t rows, int64_t cols,
                            int64_t rows_per_mask) {
  launch_softmax_forward(nullptr, probs, logits, mask, rows, cols, rows_per_mask, 0.0f, 1.0f);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, softmax_forward);

// dlogits, dprobs, probs (rows, cols)
inline void softmax_backward(float* dlogits, const float* dprobs, const float* probs, int64_t rows, int64_t cols) {
  launch_softmax_backward(dlogits, dprobs, probs, rows, cols, /*clipped=*/false, 0.0f, 1.0f);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, softmax_backward);

// out, probs, logits (rows, cols); mask (rows / rows_per_mask, cols) or nullptr
inline void clipped_softmax_forward(float* out, float* probs, const float* logits, const float* mask, int64_t rows,
                                    int64_t cols, int64_t rows_per_mask, float gamma, float zeta) {
  launch_softmax_forward(out, probs, logits, mask, rows, cols, rows_per_mask, gamma, zeta);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, clipped_softmax_forward);

// dlogits, dout, probs (rows, cols)
inline void clipped_softmax_backward(float* dlogits, const float* dout, const float* probs, int64_t rows,
                                     int64_t cols, float gamma, float zeta) {
  launch_softmax_backward(dlogits, dout, probs, rows, cols, /*clipped=*/true, gamma, zeta);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, clipped_softmax_backward);

}  // namespace bertforge::cuda
