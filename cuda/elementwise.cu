// CUDA kernels for element-wise arithmetic, bias rows and sums (of one tensor, and the sums of squares of a list
// of tensors), their host launchers (the CPU kernels' signatures) and their registration. CPU reference:
// ops/elementwise.cpp, ops/reduce.cpp. One thread per element, except the sums (below).
#include <cstdint>

#include "cuda/multi_tensor.cuh"
#include "cuda/portable.cuh"
#include "cuda/reduce.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kElementwiseThreads = 256;

__global__ void binary_kernel(BinaryOp op, float* out, const float* a, const float* b, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  switch (op) {
    case BinaryOp::kAdd: out[i] = a[i] + b[i]; break;
    case BinaryOp::kSub: out[i] = a[i] - b[i]; break;
    case BinaryOp::kMul: out[i] = a[i] * b[i]; break;
  }
}

__global__ void scale_kernel(float* out, const float* x, float s, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = s * x[i];
}

// out (rows, cols) = x + bias (cols)
__global__ void add_bias_kernel(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < rows * cols) out[i] = x[i] + bias[i % cols];
}

// out (rows, cols) = x * s (cols)
__global__ void scale_channels_kernel(float* out, const float* x, const float* s, int64_t rows, int64_t cols) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < rows * cols) out[i] = x[i] * s[i % cols];
}

// ---- sum_rows: out (cols) = column sums of x (rows, cols) -------------------------------------------
// Both shapes it serves need many blocks: bias gradients (4096 rows x 768 columns) and whole-tensor sums
// (a gradient's 23M elements as one column). Blocks add their partial sums into `out` with atomicAdd, after
// a kernel zeroes it, so the last bits depend on the order the blocks finish in.
constexpr int kSumColumns = 32;       // columns per block: a warp reads 32 adjacent floats of a row
constexpr int kSumRowLanes = 16;      // threads per column
constexpr int64_t kSumMinRowsPerBlock = 256;
constexpr int64_t kMaxGridY = 65535;
constexpr int64_t kSumElementsPerBlock = 8 * 1024;  // a single column: elements per block

__global__ void zero_kernel(float* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = 0.0f;
}

// Block (column tile, row chunk) of (kSumColumns x kSumRowLanes) threads: thread (tx, ty) adds rows ty,
// ty + kSumRowLanes, ... of its chunk in column tile * kSumColumns + tx; the row lanes meet in shared memory.
__global__ void sum_rows_tiled_kernel(float* out, const float* x, int64_t rows, int64_t cols,
                                      int64_t rows_per_block) {
  __shared__ float partial[kSumRowLanes][kSumColumns + 1];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kSumColumns + threadIdx.x;
  const int64_t first_row = static_cast<int64_t>(blockIdx.y) * rows_per_block;
  const int64_t end_row = first_row + rows_per_block < rows ? first_row + rows_per_block : rows;
  float acc = 0.0f;
  if (c < cols) {
    for (int64_t r = first_row + threadIdx.y; r < end_row; r += kSumRowLanes) acc += x[r * cols + c];
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float total = 0.0f;
    for (int lane = 0; lane < kSumRowLanes; ++lane) total += partial[lane][threadIdx.x];
    atomicAdd(&out[c], total);
  }
}

// One column (out[0] = sum of x[0, n)): each block sums kSumElementsPerBlock elements.
__global__ void sum_all_kernel(float* out, const float* x, int64_t n) {
  __shared__ float scratch[kWarpSize];
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kSumElementsPerBlock;
  const int64_t end = first + kSumElementsPerBlock < n ? first + kSumElementsPerBlock : n;
  float acc = 0.0f;
  for (int64_t i = first + threadIdx.x; i < end; i += blockDim.x) acc += x[i];
  const float total = block_sum(acc, scratch);
  if (threadIdx.x == 0) atomicAdd(out, total);
}

// The tensors of one multi-tensor launch of sum_of_squares_chunks.
struct SquaresGroup {
  MultiTensorChunks chunks;
  const float* x[kMultiTensorGroup];
};

// partials[b] = the sum of squares of block b's chunk (cuda/multi_tensor.cuh).
__global__ void sum_of_squares_chunks_kernel(float* partials, SquaresGroup group) {
  __shared__ float scratch[kWarpSize];
  const ChunkRange chunk = chunk_of_block(group.chunks, blockIdx.x);
  const float* x = group.x[chunk.tensor];
  float acc = 0.0f;
  for (int64_t i = chunk.begin + threadIdx.x; i < chunk.end; i += blockDim.x) acc += x[i] * x[i];
  const float total = block_sum(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

inline void binary(BinaryOp op, float* out, const float* a, const float* b, int64_t n) {
  if (n == 0) return;
  BF_LAUNCH(binary_kernel, blocks_for(n, kElementwiseThreads), kElementwiseThreads, 0, op, out, a, b, n);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, binary);

inline void scale(float* out, const float* x, float s, int64_t n) {
  if (n == 0) return;
  BF_LAUNCH(scale_kernel, blocks_for(n, kElementwiseThreads), kElementwiseThreads, 0, out, x, s, n);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, scale);

inline void add_bias(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  BF_LAUNCH(add_bias_kernel, blocks_for(rows * cols, kElementwiseThreads), kElementwiseThreads, 0, out, x, bias,
            rows, cols);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, add_bias);

inline void scale_channels(float* out, const float* x, const float* s, int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  BF_LAUNCH(scale_channels_kernel, blocks_for(rows * cols, kElementwiseThreads), kElementwiseThreads, 0, out, x, s,
            rows, cols);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, scale_channels);

inline void sum_rows(float* out, const float* x, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  BF_LAUNCH(zero_kernel, blocks_for(cols, kElementwiseThreads), kElementwiseThreads, 0, out, cols);
  if (rows == 0) return;
  if (cols == 1) {
    BF_LAUNCH(sum_all_kernel, blocks_for(rows, kSumElementsPerBlock), kElementwiseThreads, 0, out, x, rows);
    return;
  }
  // At least kSumMinRowsPerBlock rows per block, and more where the grid's y extent would run out.
  const int64_t fewest = (rows + kMaxGridY - 1) / kMaxGridY;
  const int64_t rows_per_block = fewest > kSumMinRowsPerBlock ? fewest : kSumMinRowsPerBlock;
  const dim3 grid(blocks_for(cols, kSumColumns), blocks_for(rows, rows_per_block));
  BF_LAUNCH(sum_rows_tiled_kernel, grid, dim3(kSumColumns, kSumRowLanes), 0, out, x, rows, cols, rows_per_block);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, sum_rows);

// Lists of `count` tensors (a host array of device pointers); one launch per kMultiTensorGroup tensors.
inline void sum_of_squares_chunks(float* partials, const float* const* tensors, const int64_t* sizes, int64_t count) {
  for_each_tensor_group(sizes, count, [&](int64_t first, const MultiTensorChunks& chunks, int64_t chunks_before) {
    SquaresGroup group;
    group.chunks = chunks;
    for (int t = 0; t < chunks.count; ++t) group.x[t] = tensors[first + t];
    BF_LAUNCH(sum_of_squares_chunks_kernel, static_cast<unsigned int>(chunks.first_chunk[chunks.count]),
              kElementwiseThreads, 0, partials + chunks_before, group);
  });
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, sum_of_squares_chunks);

}  // namespace bertforge::cuda
