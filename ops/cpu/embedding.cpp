// CPU kernels for the embedding lookup and its scatter-add gradient (see ops/kernels.h).
// ids are trusted to lie in [0, vocab): the op checks them before calling.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "ops/cpu/cpu_kernels.h"

namespace bertforge::cpu {

namespace {
constexpr int64_t kFloatsPerLine = 16;           // a 64-byte cache line of floats
}  // namespace

// out (n, dim) = table (vocab, dim) rows at ids (n)
void embedding_forward(float* out, const int64_t* ids, const float* table, int64_t n, int64_t dim) {
#pragma omp parallel for schedule(static) if (n * dim > kParallelThreshold)
  for (int64_t r = 0; r < n; ++r) {
    std::memcpy(out + r * dim, table + ids[r] * dim, static_cast<size_t>(dim) * sizeof(float));
  }
}

// dtable (vocab, dim) += dout (n, dim) scattered to rows ids (n).
// Repeated ids add into the same row, so threads split the columns, not the
// ids: each thread owns a range of whole cache lines of every row and walks
// all ids in order. No two threads write the same float, and every float sums
// its contributions in id order whatever the thread count (deterministic).
void embedding_backward(float* dtable, const int64_t* ids, const float* dout, int64_t n, int64_t dim) {
  const int64_t lines = (dim + kFloatsPerLine - 1) / kFloatsPerLine;
#pragma omp parallel if (n * dim > kParallelThreshold)
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t begin = std::min(dim, lines * t / threads * kFloatsPerLine);
    const int64_t end = std::min(dim, lines * (t + 1) / threads * kFloatsPerLine);
    for (int64_t r = 0; r < n && begin < end; ++r) {
      float* dst = dtable + ids[r] * dim;
      const float* src = dout + r * dim;
#pragma omp simd
      for (int64_t c = begin; c < end; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace bertforge::cpu
