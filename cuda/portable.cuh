// What a kernel source (cuda/<family>.cu) needs so that one copy of it compiles twice:
// with nvcc for the GPU, and with the host compiler for the CUDA simulator of the
// tests (tests/cuda_sim/cuda_sim.h), which runs every thread of a block as a fiber.
//
// A kernel source holds the __global__ kernels of one op family, their host launchers,
// which have exactly the signatures of the CPU kernels they mirror, and the launchers'
// registration (BF_REGISTER_KERNEL, ops/kernels.h). nvcc compiles it into bertforge_cuda;
// a simulator test #includes it (one kernel source per test, except the training test,
// which includes them all), so its kernels and launchers need not be inline.
// It uses CUDA C++ as usual, with two exceptions, both macros defined here:
//
//   BF_LAUNCH(kernel, grid, block, shared_bytes, args...)   instead of kernel<<<...>>>(args...)
//   BF_DYNAMIC_SHARED(float, name);                         instead of extern __shared__ float name[];
//
// Under nvcc a launch goes to the compute stream (cuda/stream.h) and is checked with
// cudaGetLastError; under the simulator it runs the whole grid before returning and
// throws bertforge::Error on a deadlock or a misused warp primitive.
//
// A simulator test includes tests/cuda_sim/cuda_sim.h before the kernel source.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)

#include "cuda/cuda_check.h"
#include "cuda/stream.h"

#define BF_LAUNCH(kernel, grid, block, shared_bytes, ...)                                        \
  do {                                                                                          \
    kernel<<<(grid), (block), (shared_bytes), ::bertforge::cuda::compute_stream()>>>(__VA_ARGS__); \
    BF_CUDA_CHECK(cudaGetLastError());                                                          \
  } while (0)

// Every kernel's dynamic shared memory is the same byte array, viewed as `type`.
#define BF_DYNAMIC_SHARED(type, name)                          \
  extern __shared__ __align__(16) unsigned char bf_dynamic_shared_[]; \
  type* name = reinterpret_cast<type*>(bf_dynamic_shared_)

#elif defined(BF_CUDA_SIMULATOR)

#define BF_LAUNCH(kernel, grid, block, shared_bytes, ...) \
  ::cuda_sim::launch(#kernel, kernel, (grid), (block), (shared_bytes), ##__VA_ARGS__)

#define BF_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::cuda_sim::dynamic_shared_memory())

#else
#error "a CUDA kernel source compiles with nvcc, or with the host compiler after tests/cuda_sim/cuda_sim.h"
#endif

namespace bertforge::cuda {

constexpr int kWarpSize = 32;

// Blocks that cover n items, `per_block` items per block (e.g. one per thread).
inline unsigned int blocks_for(int64_t n, int64_t per_block) {
  return static_cast<unsigned int>((n + per_block - 1) / per_block);
}

}  // namespace bertforge::cuda
