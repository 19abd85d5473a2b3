// Warp and block reductions for kernels: sums and maxima of one float per thread.
//
// warp_*: every lane of a full warp gets the result (butterfly of __shfl_xor_sync).
// block_*: every thread of the block gets the result; the block size must be a multiple
// of 32 (at most 1024), every thread of the block must call it, and `scratch` is
// 32 floats of shared memory that the caller does not use at the same time.
#pragma once

#include <math.h>

#include "cuda/portable.cuh"

namespace bertforge::cuda {

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

__device__ __forceinline__ float warp_max(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}

// Reduces within each warp, then the warps' results in warp 0, then broadcasts.
template <typename WarpReduce>
__device__ __forceinline__ float block_reduce(float value, float* scratch, float identity, WarpReduce warp_reduce) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  value = warp_reduce(value);
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  if (warp == 0) {  // only warp 0 reads the partials, so thread 0's write below races with no read
    value = lane < warps ? scratch[lane] : identity;
    value = warp_reduce(value);
  }
  if (threadIdx.x == 0) scratch[0] = value;
  __syncthreads();
  return scratch[0];
}

__device__ __forceinline__ float block_sum(float value, float* scratch) {
  return block_reduce(value, scratch, 0.0f, [](float v) { return warp_sum(v); });
}

__device__ __forceinline__ float block_max(float value, float* scratch) {
  return block_reduce(value, scratch, -INFINITY, [](float v) { return warp_max(v); });
}

}  // namespace bertforge::cuda
