// CUDA kernels of the integer Linear layers of quantized inference (ops/kernels.h quantize_u8, int8_linear), their
// host launchers and their registration. CPU counterparts: quant/int8_gemm.h (quantize_activations, the prepacked
// int8 GEMM with its dequantizing epilogue), which these match: the same codes, the same exact int32 sums, the
// same float epilogue.
//
// The GEMM uses __dp4a (sm_61+: four int8 products and their sum in one instruction) on signed bytes, so an
// activation a in [0, 255] enters as a - 128 (a XOR 0x80), and the epilogue adds 128 * rowsum(w) back, as the
// CPU's AVX2 path does:  sum_k (a - z) w = sum_k (a - 128) w + (128 - z) rowsum(w).
// Tiles: a block computes 64 x 64 outputs, 256 threads with 4 x 4 each; K advances 64 bytes (16 words of 4 k) at a
// time through shared memory, zero-filled beyond the matrices so that the padding adds nothing.
#pragma once

#include <math.h>

#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/portable.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kQuantizeThreads = 256;
constexpr int kInt8Tile = 64;          // output rows and columns per block
constexpr int kInt8TileK = 64;         // bytes of K per step
constexpr int kInt8TileWords = kInt8TileK / 4;
constexpr int kInt8Threads = 256;      // 16 x 16 threads
constexpr int kInt8PerThread = 4;      // 4 x 4 outputs per thread

// q (n) = clamp(round(x / scale) + zero_point, 0, q_max); a NaN gives 0, as on the CPU.
__global__ void quantize_u8_kernel(uint8_t* q, const float* x, int64_t n, float scale, float zero_point,
                                   float q_max) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = rintf(x[i] / scale) + zero_point;
  q[i] = static_cast<uint8_t>(static_cast<int32_t>(fminf(fmaxf(v, 0.0f), q_max)));
}

// y (M,N) from a (M,K) uint8 and w (N,K) int8; see the file comment and ops/kernels.h.
__global__ void int8_linear_kernel(float* y, const uint8_t* a, const int8_t* w, const int32_t* w_row_sums,
                                   const float* w_scales, int64_t num_w_scales, const float* bias, int64_t M,
                                   int64_t N, int64_t K, float a_scale, int32_t a_zero_point) {
  // One extra word per row, so that the rows a warp reads start on different banks.
  __shared__ int32_t a_tile[kInt8Tile][kInt8TileWords + 1];
  __shared__ int32_t w_tile[kInt8Tile][kInt8TileWords + 1];
  const int tx = threadIdx.x % (kInt8Tile / kInt8PerThread), ty = threadIdx.x / (kInt8Tile / kInt8PerThread);
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kInt8Tile;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kInt8Tile;
  int32_t acc[kInt8PerThread][kInt8PerThread] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kInt8TileK) {
    for (int e = threadIdx.x; e < kInt8Tile * kInt8TileK; e += blockDim.x) {
      const int r = e / kInt8TileK, c = e % kInt8TileK;
      const int64_t k = k0 + c, m = row0 + r, n = col0 + r;
      reinterpret_cast<int8_t*>(a_tile[r])[c] =
          m < M && k < K ? static_cast<int8_t>(a[m * K + k] ^ 0x80) : static_cast<int8_t>(0);
      reinterpret_cast<int8_t*>(w_tile[r])[c] = n < N && k < K ? w[n * K + k] : static_cast<int8_t>(0);
    }
    __syncthreads();
    for (int word = 0; word < kInt8TileWords; ++word) {
      int32_t a_words[kInt8PerThread], w_words[kInt8PerThread];
      for (int i = 0; i < kInt8PerThread; ++i) a_words[i] = a_tile[ty * kInt8PerThread + i][word];
      for (int j = 0; j < kInt8PerThread; ++j) w_words[j] = w_tile[tx * kInt8PerThread + j][word];
      for (int i = 0; i < kInt8PerThread; ++i) {
        for (int j = 0; j < kInt8PerThread; ++j) acc[i][j] = __dp4a(a_words[i], w_words[j], acc[i][j]);
      }
    }
    __syncthreads();
  }
  for (int i = 0; i < kInt8PerThread; ++i) {
    const int64_t m = row0 + ty * kInt8PerThread + i;
    for (int j = 0; j < kInt8PerThread; ++j) {
      const int64_t n = col0 + tx * kInt8PerThread + j;
      if (m >= M || n >= N) continue;
      const int32_t sum = acc[i][j] + (128 - a_zero_point) * w_row_sums[n];
      const float combined_scale = a_scale * w_scales[num_w_scales == 1 ? 0 : n];
      y[m * N + n] = combined_scale * static_cast<float>(sum) + (bias != nullptr ? bias[n] : 0.0f);
    }
  }
}

inline void quantize_u8(uint8_t* q, const float* x, int64_t n, float scale, float zero_point, float q_max) {
  if (n == 0) return;
  BF_LAUNCH(quantize_u8_kernel, blocks_for(n, kQuantizeThreads), kQuantizeThreads, 0, q, x, n, scale, zero_point,
            q_max);
}

inline void int8_linear(float* y, const uint8_t* a, const int8_t* w, const int32_t* w_row_sums, const float* w_scales,
                        int64_t num_w_scales, const float* bias, int64_t M, int64_t N, int64_t K, float a_scale,
                        int32_t a_zero_point) {
  if (M == 0 || N == 0) return;
  const dim3 grid(blocks_for(N, kInt8Tile), blocks_for(M, kInt8Tile));
  BF_LAUNCH(int8_linear_kernel, grid, kInt8Threads, 0, y, a, w, w_row_sums, w_scales, num_w_scales, bias, M, N, K,
            a_scale, a_zero_point);
}

void register_int8_linear_kernels(KernelTable& table) {
  table.quantize_u8 = &quantize_u8;
  table.int8_linear = &int8_linear;
}

}  // namespace bertforge::cuda
