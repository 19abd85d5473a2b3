// CUDA kernels for dropout and head dropout, their host launchers (the CPU kernels' signatures) and their
// registration. CPU reference: ops/dropout.cpp. Masks come
// from the same Philox stream (core/philox.h, ops/head_dropout_mask.h) and are
// bit-identical to the CPU's.
//
// Dropout: one thread per Philox block, i.e. per 4 consecutive elements, so each block of
// random words is computed once; the 4 elements move as one 16-byte load and store when
// both pointers are 16-byte aligned. Head dropout: a CUDA block covers a chunk of one
// (sample, head) row; its thread 0 draws the sample's mask, the others scale the chunk.
// Backward is the forward map applied to the gradient (the mask is regenerated).
#include <math.h>

#include <cstdint>

#include "core/philox.h"
#include "cuda/portable.cuh"
#include "ops/head_dropout_mask.h"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kDropoutThreads = 256;
constexpr int kHeadDropoutThreads = 256;
constexpr int64_t kHeadDropoutChunk = 4096;  // elements of one row per CUDA block (16 per thread)

// Four floats moved by one 128-bit access.
struct alignas(16) FloatQuad {
  float v[4];
};

// x / (1 - p) if kept (keep_bits all ones), else +0 (also for an inf or NaN x), as on the CPU.
__device__ __forceinline__ float dropout_element(float x, float keep_scale, uint32_t keep_bits) {
  return __uint_as_float(__float_as_uint(x * keep_scale) & keep_bits);
}

// All ones if the element of Philox word `word` is kept (its uniform (word >> 8) * 2^-24 >= p), else 0.
__device__ __forceinline__ uint32_t dropout_keep_bits(uint32_t word, uint32_t threshold) {
  return (word >> 8) >= threshold ? ~0u : 0u;
}

// out (n) = dropout of x (n); thread t owns elements [4t, 4t + 4), the t-th Philox block.
// kQuads: out and x are 16-byte aligned, so full blocks use one FloatQuad access each.
template <bool kQuads>
__global__ void dropout_kernel(float* out, const float* x, int64_t n, uint32_t threshold, float keep_scale,
                               uint64_t seed, uint64_t offset) {
  const int64_t block = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t first = 4 * block;
  if (first >= n) return;
  const Uint32x4 words = philox_block(seed, offset, static_cast<uint64_t>(block));
  if (kQuads && first + 4 <= n) {
    FloatQuad quad = reinterpret_cast<const FloatQuad*>(x)[block];
    for (int j = 0; j < 4; ++j) {
      quad.v[j] = dropout_element(quad.v[j], keep_scale, dropout_keep_bits(words.x[j], threshold));
    }
    reinterpret_cast<FloatQuad*>(out)[block] = quad;
  } else {
    const int count = n - first < 4 ? static_cast<int>(n - first) : 4;
    for (int j = 0; j < count; ++j) {
      out[first + j] = dropout_element(x[first + j], keep_scale, dropout_keep_bits(words.x[j], threshold));
    }
  }
}

// out (batch, heads, inner) = x scaled per (sample, head) row; CUDA block b covers chunk
// b % chunks_per_row of row b / chunks_per_row.
__global__ void head_dropout_kernel(float* out, const float* x, int64_t heads, int64_t inner, int64_t chunks_per_row,
                                    float p, uint64_t seed, uint64_t offset) {
  __shared__ float row_scale;  // the mask's scale if the row's head is kept, else 0
  const int64_t row = blockIdx.x / chunks_per_row;
  const int64_t begin = (blockIdx.x % chunks_per_row) * kHeadDropoutChunk;
  const int64_t end = begin + kHeadDropoutChunk < inner ? begin + kHeadDropoutChunk : inner;
  const int64_t head = row % heads;
  if (threadIdx.x == 0) {
    const HeadDropoutMask mask =
        head_dropout_mask(seed, offset, static_cast<uint64_t>(row / heads), static_cast<int>(heads), p);
    row_scale = (mask.keep_bits >> head) & 1 ? mask.scale : 0.0f;
  }
  __syncthreads();
  const float scale = row_scale;
  const float* x_row = x + row * inner;
  float* out_row = out + row * inner;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    out_row[i] = scale != 0.0f ? x_row[i] * scale : 0.0f;  // a dropped row is 0 even where x is inf or NaN
  }
}

// Launches dropout_kernel with the CPU's integer threshold: kept iff (word >> 8) >= ceil(p * 2^24).
inline void dropout_apply(float* out, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) {
  if (n == 0) return;
  // p >= 1 keeps nothing: a threshold of 2^24 exceeds every (word >> 8), and the scale is unused.
  const bool keep_none = p >= 1.0f;
  const float keep_scale = keep_none ? 0.0f : 1.0f / (1.0f - p);
  const uint32_t threshold = keep_none ? (1u << 24) : (p > 0.0f ? static_cast<uint32_t>(ceilf(p * 16777216.0f)) : 0u);
  const int64_t philox_blocks = (n + 3) / 4;
  const unsigned int grid = blocks_for(philox_blocks, kDropoutThreads);
  const bool aligned = ((reinterpret_cast<uintptr_t>(out) | reinterpret_cast<uintptr_t>(x)) % 16) == 0;
  if (aligned) {
    BF_LAUNCH(dropout_kernel<true>, grid, kDropoutThreads, 0, out, x, n, threshold, keep_scale, seed, offset);
  } else {
    BF_LAUNCH(dropout_kernel<false>, grid, kDropoutThreads, 0, out, x, n, threshold, keep_scale, seed, offset);
  }
}

inline void head_dropout_apply(float* out, const float* x, int64_t batch, int64_t heads, int64_t inner, float p,
                               uint64_t seed, uint64_t offset) {
  if (batch * heads * inner == 0) return;
  const int64_t chunks_per_row = (inner + kHeadDropoutChunk - 1) / kHeadDropoutChunk;
  const unsigned int grid = static_cast<unsigned int>(batch * heads * chunks_per_row);
  BF_LAUNCH(head_dropout_kernel, grid, kHeadDropoutThreads, 0, out, x, heads, inner, chunks_per_row, p, seed, offset);
}

// out, x (n); out may alias x.
inline void dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_apply(out, x, n, p, seed, offset);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, dropout_forward);

// dx, dout (n); dx may alias dout.
inline void dropout_backward(float* dx, const float* dout, int64_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_apply(dx, dout, n, p, seed, offset);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, dropout_backward);

// out, x (batch, heads, inner); out may alias x.
inline void head_dropout_forward(float* out, const float* x, int64_t batch, int64_t heads, int64_t inner, float p,
                                 uint64_t seed, uint64_t offset) {
  head_dropout_apply(out, x, batch, heads, inner, p, seed, offset);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, head_dropout_forward);

// dx, dout (batch, heads, inner); dx may alias dout.
inline void head_dropout_backward(float* dx, const float* dout, int64_t batch, int64_t heads, int64_t inner, float p,
                                  uint64_t seed, uint64_t offset) {
  head_dropout_apply(dx, dout, batch, heads, inner, p, seed, offset);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, head_dropout_backward);

}  // namespace bertforge::cuda
