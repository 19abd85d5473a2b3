// CPU kernels over lists of tensors (see ops/kernels.h): the per-chunk sums of squares behind the global
// gradient norm, and AdamW on every parameter with the clipping factor folded into the gradient.
#include <algorithm>
#include <vector>

#include "ops/cpu/cpu_kernels.h"

namespace bertforge::cpu {

// partials (chunks): one sum of squares per kMultiTensorChunk elements of each tensor, accumulated in double and
// rounded once (the reference the GPU's float tree reduction is compared with).
void sum_of_squares_chunks(float* partials, const float* const* tensors, const int64_t* sizes, int64_t count) {
  struct Chunk {
    const float* x;
    int64_t n;
  };
  std::vector<Chunk> chunks;
  for (int64_t t = 0; t < count; ++t) {
    for (int64_t start = 0; start < sizes[t]; start += kMultiTensorChunk) {
      chunks.push_back({tensors[t] + start, std::min(kMultiTensorChunk, sizes[t] - start)});
    }
  }
  const int64_t total = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(dynamic) if (parallel : total > 1)
  for (int64_t c = 0; c < total; ++c) {
    double sum = 0.0;
    const float* x = chunks[c].x;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < chunks[c].n; ++i) sum += static_cast<double>(x[i]) * x[i];
    partials[c] = static_cast<float>(sum);
  }
}

void adamw_update_many(float* const* params, const float* const* grads, float* const* m, float* const* v,
                       const int64_t* sizes, const float* weight_decays, int64_t count, float grad_scale, float lr,
                       float beta1, float beta2, float eps, int64_t step) {
  for (int64_t t = 0; t < count; ++t) {
    adamw_update_scaled(params[t], grads[t], grad_scale, m[t], v[t], sizes[t], lr, beta1, beta2, eps,
                        weight_decays[t], step);
  }
}

}  // namespace bertforge::cpu
