// What the multi-tensor kernels share (ops/kernels.h: sum_of_squares_chunks, adamw_update_many): the chunk
// table of one launch over a group of at most kMultiTensorGroup tensors, passed by value as part of a kernel
// argument (no device memory to fill first), how a block finds its tensor, and the loop over groups.
//
// Block b of a launch works on chunk b - first_chunk[t] of tensor t, where first_chunk[t] <= b < first_chunk[t+1]:
// elements [c * kMultiTensorChunk, min((c + 1) * kMultiTensorChunk, size[t])). Header-only (inline and
// __forceinline__ only), so several kernel sources can include it.
#pragma once

#include <cstdint>

#include "cuda/portable.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

struct MultiTensorChunks {
  int count = 0;                                 // tensors in the group
  int64_t size[kMultiTensorGroup] = {};          // elements of each
  int64_t first_chunk[kMultiTensorGroup + 1] = {};  // first_chunk[count]: the group's chunks, its launch's blocks
};

// Tensor t's element range of block `block`, whose tensor is t.
struct ChunkRange {
  int tensor;
  int64_t begin, end;
};

__device__ __forceinline__ ChunkRange chunk_of_block(const MultiTensorChunks& chunks, int64_t block) {
  int low = 0, high = chunks.count - 1;  // the last t with first_chunk[t] <= block
  while (low < high) {
    const int middle = (low + high + 1) / 2;
    if (chunks.first_chunk[middle] <= block) {
      low = middle;
    } else {
      high = middle - 1;
    }
  }
  const int64_t begin = (block - chunks.first_chunk[low]) * kMultiTensorChunk;
  const int64_t end = begin + kMultiTensorChunk < chunks.size[low] ? begin + kMultiTensorChunk : chunks.size[low];
  return {low, begin, end};
}

// Calls launch_group(first tensor, chunk table, index of the group's first chunk among all tensors' chunks) for
// each group of at most kMultiTensorGroup consecutive tensors that has at least one chunk, in order.
template <typename LaunchGroup>
inline void for_each_tensor_group(const int64_t* sizes, int64_t count, LaunchGroup launch_group) {
  int64_t chunks_before = 0;
  for (int64_t first = 0; first < count; first += kMultiTensorGroup) {
    MultiTensorChunks chunks;
    chunks.count = static_cast<int>(count - first < kMultiTensorGroup ? count - first : kMultiTensorGroup);
    for (int t = 0; t < chunks.count; ++t) {
      chunks.size[t] = sizes[first + t];
      const int64_t tensor_chunks = (sizes[first + t] + kMultiTensorChunk - 1) / kMultiTensorChunk;
      chunks.first_chunk[t + 1] = chunks.first_chunk[t] + tensor_chunks;
    }
    if (chunks.first_chunk[chunks.count] > 0) launch_group(first, chunks, chunks_before);
    chunks_before += chunks.first_chunk[chunks.count];
  }
}

}  // namespace bertforge::cuda
