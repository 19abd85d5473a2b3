// CUDA kernels for the embedding lookup and its scatter-add gradient, their host launchers
// (the CPU kernels' signatures) and their registration. CPU reference:
// ops/embedding.cpp. ids are trusted to lie in [0, vocab): the op checks them.
//
// Forward: one CUDA block per output row, its threads copying adjacent columns.
// Backward: a CUDA block owns a tile of kEmbeddingColumns columns of a chunk of
// kEmbeddingRowsPerChunk consecutive ids; each thread owns one column, sums dout over runs of
// equal consecutive ids in registers and adds each run's sum to dtable with one atomicAdd.
// Runs matter for ids repeated back to back (token types: a sample's segment is one id), and
// chunks bound how many atomics hit one address (n / chunk for an id present in every row).
// The float atomics make the order of additions, hence the last bits of dtable, vary from
// run to run on a GPU (nondeterministic); the CPU adds in id order.
#include <cstdint>

#include "cuda/portable.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kEmbeddingMaxThreads = 256;
constexpr int kEmbeddingColumns = 128;      // columns per backward CUDA block, one per thread
constexpr int kEmbeddingRowsPerChunk = 32;  // ids per backward CUDA block
static_assert(kEmbeddingRowsPerChunk <= kEmbeddingColumns, "the block's threads load the chunk's ids");

// out (n, dim) = table (vocab, dim) rows at ids (n); CUDA block r copies row r.
__global__ void embedding_forward_kernel(float* out, const int64_t* ids, const float* table, int64_t dim) {
  const int64_t row = blockIdx.x;
  const float* src = table + ids[row] * dim;
  float* dst = out + row * dim;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) dst[c] = src[c];
}

// dtable (vocab, dim) += dout (n, dim) scattered to rows ids (n). CUDA block (x, y) covers ids
// [x * kEmbeddingRowsPerChunk, ...) and columns [y * kEmbeddingColumns, ...).
__global__ void embedding_backward_kernel(float* dtable, const int64_t* ids, const float* dout, int64_t n,
                                          int64_t dim) {
  __shared__ int64_t chunk_ids[kEmbeddingRowsPerChunk];
  const int64_t first_row = static_cast<int64_t>(blockIdx.x) * kEmbeddingRowsPerChunk;
  const int rows = n - first_row < kEmbeddingRowsPerChunk ? static_cast<int>(n - first_row) : kEmbeddingRowsPerChunk;
  if (static_cast<int>(threadIdx.x) < rows) chunk_ids[threadIdx.x] = ids[first_row + threadIdx.x];
  __syncthreads();
  const int64_t column = static_cast<int64_t>(blockIdx.y) * kEmbeddingColumns + threadIdx.x;
  if (column >= dim) return;
  const float* dout_column = dout + first_row * dim + column;
  float run_sum = dout_column[0];
  for (int r = 1; r < rows; ++r) {
    const float value = dout_column[r * dim];
    if (chunk_ids[r] != chunk_ids[r - 1]) {
      atomicAdd(dtable + chunk_ids[r - 1] * dim + column, run_sum);
      run_sum = 0.0f;
    }
    run_sum += value;
  }
  atomicAdd(dtable + chunk_ids[rows - 1] * dim + column, run_sum);
}

inline void embedding_forward(float* out, const int64_t* ids, const float* table, int64_t n, int64_t dim) {
  if (n * dim == 0) return;
  // A whole number of warps, enough for one column each up to kEmbeddingMaxThreads.
  const int64_t warps = (dim + kWarpSize - 1) / kWarpSize;
  const int threads =
      warps * kWarpSize < kEmbeddingMaxThreads ? static_cast<int>(warps * kWarpSize) : kEmbeddingMaxThreads;
  BF_LAUNCH(embedding_forward_kernel, static_cast<unsigned int>(n), threads, 0, out, ids, table, dim);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, embedding_forward);

inline void embedding_backward(float* dtable, const int64_t* ids, const float* dout, int64_t n, int64_t dim) {
  if (n * dim == 0) return;
  const dim3 grid(blocks_for(n, kEmbeddingRowsPerChunk), blocks_for(dim, kEmbeddingColumns));
  BF_LAUNCH(embedding_backward_kernel, grid, kEmbeddingColumns, 0, dtable, ids, dout, n, dim);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, embedding_backward);

}  // namespace bertforge::cuda
