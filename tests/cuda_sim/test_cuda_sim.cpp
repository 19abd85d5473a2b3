// The CUDA simulator itself: indices, barriers, shared memory, warp shuffles and votes,
// atomics, and the errors it reports (deadlock, launch limits, reads of absent lanes).
#include "tests/cuda_sim/cuda_sim.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/check.h"
#include "cuda/reduce.cuh"

namespace {

// out[global thread id] = global thread id, on a 2-D grid of 2-D blocks.
__global__ void write_global_ids(int* out, int width) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  out[y * width + x] = y * width + x;
}

TEST(CudaSim, EveryThreadOfA2DGridRunsOnceWithItsIndices) {
  const dim3 grid(3, 2), block(4, 5);
  const int width = 12, height = 10;
  std::vector<int> out(width * height, -1);
  BF_LAUNCH(write_global_ids, grid, block, 0, out.data(), width);
  for (int i = 0; i < width * height; ++i) EXPECT_EQ(out[i], i);
}

// Block sums through static shared memory and a tree of __syncthreads: sums[b] = sum of x over block b.
__global__ void block_sum(float* sums, const float* x, int n) {
  __shared__ float partial[256];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  partial[threadIdx.x] = i < n ? x[i] : 0.0f;
  __syncthreads();
  for (unsigned int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) sums[blockIdx.x] = partial[0];
}

TEST(CudaSim, SharedMemoryTreeReductionNeedsEveryBarrier) {
  const int n = 1000, threads = 256, blocks = 4;  // the last block is partly empty
  std::vector<float> x(n), sums(blocks);
  std::iota(x.begin(), x.end(), 1.0f);
  BF_LAUNCH(block_sum, blocks, threads, 0, sums.data(), x.data(), n);
  for (int b = 0; b < blocks; ++b) {
    double expected = 0;
    for (int i = b * threads; i < std::min(n, (b + 1) * threads); ++i) expected += i + 1;
    EXPECT_EQ(sums[b], static_cast<float>(expected)) << "block " << b;
  }
}

// Warp sums with __shfl_xor_sync (every lane gets the total) and __shfl_down_sync (lane 0 does).
__global__ void warp_sums(float* xor_sums, float* down_sums, const float* x) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float a = x[i], b = x[i];
  for (int offset = 16; offset > 0; offset /= 2) {
    a += __shfl_xor_sync(0xffffffffu, a, offset);
    b += __shfl_down_sync(0xffffffffu, b, offset);
  }
  xor_sums[i] = a;
  down_sums[i] = b;
}

TEST(CudaSim, WarpShufflesExchangeValuesBetweenLanes) {
  const int threads = 64;
  std::vector<float> x(threads), xor_sums(threads), down_sums(threads);
  for (int i = 0; i < threads; ++i) x[i] = static_cast<float>(i * i);
  BF_LAUNCH(warp_sums, 1, threads, 0, xor_sums.data(), down_sums.data(), x.data());
  for (int warp = 0; warp < 2; ++warp) {
    float expected = 0;
    for (int lane = 0; lane < 32; ++lane) expected += x[warp * 32 + lane];
    for (int lane = 0; lane < 32; ++lane) EXPECT_EQ(xor_sums[warp * 32 + lane], expected);
    EXPECT_EQ(down_sums[warp * 32], expected);
  }
}

// __shfl_sync with width 8 broadcasts lane 2 of each 8-lane segment; __shfl_up_sync shifts by 1 inside segments.
__global__ void segment_shuffles(int* broadcast, int* shifted) {
  const int lane = threadIdx.x;
  broadcast[lane] = __shfl_sync(0xffffffffu, lane * 10, 2, 8);
  shifted[lane] = __shfl_up_sync(0xffffffffu, lane * 10, 1, 8);
}

TEST(CudaSim, ShuffleWidthSplitsTheWarpIntoSegments) {
  std::vector<int> broadcast(32), shifted(32);
  BF_LAUNCH(segment_shuffles, 1, 32, 0, broadcast.data(), shifted.data());
  for (int lane = 0; lane < 32; ++lane) {
    EXPECT_EQ(broadcast[lane], ((lane / 8) * 8 + 2) * 10);
    EXPECT_EQ(shifted[lane], lane % 8 == 0 ? lane * 10 : (lane - 1) * 10);  // segment starts keep their value
  }
}

// Votes: ballot of "lane is odd", any/all of "lane < limit".
__global__ void votes(unsigned int* ballot, int* any_below, int* all_below, int limit) {
  const int lane = threadIdx.x;
  const unsigned int b = __ballot_sync(0xffffffffu, lane % 2 == 1);
  const int any = __any_sync(0xffffffffu, lane < limit);
  const int all = __all_sync(0xffffffffu, lane < limit);
  if (lane == 0) {
    *ballot = b;
    *any_below = any;
    *all_below = all;
  }
}

TEST(CudaSim, WarpVotes) {
  unsigned int ballot = 0;
  int any = -1, all = -1;
  BF_LAUNCH(votes, 1, 32, 0, &ballot, &any, &all, 5);
  EXPECT_EQ(ballot, 0xaaaaaaaau);
  EXPECT_EQ(any, 1);
  EXPECT_EQ(all, 0);
  BF_LAUNCH(votes, 1, 32, 0, &ballot, &any, &all, 32);
  EXPECT_EQ(all, 1);
}

// A histogram with atomicAdd from every thread of several blocks, and dynamic shared memory per block.
__global__ void histogram(int* counts, const int* values, int n, int bins) {
  BF_DYNAMIC_SHARED(int, local);
  for (int b = threadIdx.x; b < bins; b += blockDim.x) local[b] = 0;
  __syncthreads();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) atomicAdd(&local[values[i]], 1);
  __syncthreads();
  for (int b = threadIdx.x; b < bins; b += blockDim.x) atomicAdd(&counts[b], local[b]);
}

TEST(CudaSim, AtomicsAndDynamicSharedMemory) {
  const int n = 777, bins = 7;
  std::vector<int> values(n), counts(bins, 0), expected(bins, 0);
  for (int i = 0; i < n; ++i) {
    values[i] = (i * 5) % bins;
    ++expected[values[i]];
  }
  BF_LAUNCH(histogram, bertforge::cuda::blocks_for(n, 96), 96, bins * sizeof(int), counts.data(), values.data(), n,
            bins);
  EXPECT_EQ(counts, expected);
}

// Half of each warp returns early; the others still meet at __syncthreads (returned threads count as arrived).
__global__ void early_return_then_barrier(int* out) {
  if (threadIdx.x % 2 == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

TEST(CudaSim, ReturnedThreadsCountAsArrivedAtABarrier) {
  std::vector<int> out(64, 0);
  BF_LAUNCH(early_return_then_barrier, 1, 64, 0, out.data());
  for (int t = 0; t < 64; ++t) EXPECT_EQ(out[t], t % 2);
}

// Lanes 0-15 wait for a full-warp shuffle while lanes 16-31 wait at __syncthreads: no thread can move on.
__global__ void divergent_deadlock(float* out) {
  float v = static_cast<float>(threadIdx.x);
  if (threadIdx.x < 16) {
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = v;
}

TEST(CudaSim, ADeadlockIsReportedNotHung) {
  std::vector<float> out(32);
  try {
    BF_LAUNCH(divergent_deadlock, 1, 32, 0, out.data());
    FAIL() << "expected a deadlock error";
  } catch (const bertforge::Error& e) {
    EXPECT_NE(std::string(e.what()).find("divergent_deadlock deadlocked"), std::string::npos) << e.what();
  }
}

// In a block of 40 threads the second warp has 8 lanes; lane 32 + k reading lane 32 + k + 16 reads nothing.
__global__ void read_beyond_partial_warp(float* out) {
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.0f, 16);
}

TEST(CudaSim, ReadingALaneThatDoesNotExistGivesNaN) {
  std::vector<float> out(40);
  BF_LAUNCH(read_beyond_partial_warp, 1, 40, 0, out.data());
  EXPECT_EQ(out[0], 1.0f);   // lane 0 reads lane 16 of a full warp
  EXPECT_EQ(out[20], 1.0f);  // lane 20 + 16 >= 32: keeps its own value
  EXPECT_TRUE(std::isnan(out[32]));  // reads lane 48, which does not exist
}

__global__ void do_nothing() {}

TEST(CudaSim, LaunchLimitsOfRealGpusAreEnforced) {
  EXPECT_THROW(BF_LAUNCH(do_nothing, 1, 1025, 0), bertforge::Error);
  EXPECT_THROW(BF_LAUNCH(do_nothing, 1, 32, 49 * 1024), bertforge::Error);
  EXPECT_THROW(BF_LAUNCH(do_nothing, 0, 32, 0), bertforge::Error);
}

// cuda/reduce.cuh: block sums and maxima of one value per thread, for 32 to 1024 threads.
__global__ void block_sum_and_max(float* sums, float* maxima, const float* x) {
  __shared__ float scratch[32];
  const float v = x[blockIdx.x * blockDim.x + threadIdx.x];
  const float total = bertforge::cuda::block_sum(v, scratch);
  const float largest = bertforge::cuda::block_max(v, scratch);
  sums[blockIdx.x * blockDim.x + threadIdx.x] = total;  // every thread gets the result
  maxima[blockIdx.x * blockDim.x + threadIdx.x] = largest;
}

TEST(CudaSim, BlockReductionsGiveEveryThreadTheResult) {
  for (int threads : {32, 96, 1024}) {
    const int blocks = 2, n = blocks * threads;
    std::vector<float> x(n), sums(n), maxima(n);
    for (int i = 0; i < n; ++i) x[i] = static_cast<float>((i * 37) % 101) - 50.0f;  // integers: exact sums
    BF_LAUNCH(block_sum_and_max, blocks, threads, 0, sums.data(), maxima.data(), x.data());
    for (int b = 0; b < blocks; ++b) {
      const auto first = x.begin() + b * threads, last = first + threads;
      const float want_sum = std::accumulate(first, last, 0.0f), want_max = *std::max_element(first, last);
      for (int t = 0; t < threads; ++t) {
        ASSERT_EQ(sums[b * threads + t], want_sum) << threads << " threads, block " << b;
        ASSERT_EQ(maxima[b * threads + t], want_max) << threads << " threads, block " << b;
      }
    }
  }
}

}  // namespace
