// CUDA kernels of the integer Linear layers of quantized inference (quantize_u8, quantize_u8_per_row,
// int8_linear), their host launchers and their registration. CPU counterparts: quant/int8_gemm.h
// (quantize_activations, quantize_activations_per_row, the prepacked int8 GEMM with its dequantizing epilogue),
// which these match: the same codes and per-row parameters, the same exact int32 sums, the same float epilogue.
//
// Per-row (per-token) quantization: one block per row finds the row's min and max (block reductions), derives the
// row's scale and zero point in ActivationQuantParams::from_range's double arithmetic (so they equal the CPU's bit
// for bit), and quantizes the row; int8_linear's epilogue then reads each row's parameters.
//
// The GEMM uses __dp4a (sm_61+: four int8 products and their sum in one instruction) on signed bytes, so an
// activation a in [0, 255] enters as a - 128 (a XOR 0x80), and the epilogue adds 128 * rowsum(w) back, as the
// CPU's AVX2 path does:  sum_k (a - z) w = sum_k (a - 128) w + (128 - z) rowsum(w).
// Tiles: a block computes 64 x 64 outputs, 256 threads with 4 x 4 each; K advances 64 bytes (16 words of 4 k) at a
// time through shared memory, zero-filled beyond the matrices so that the padding adds nothing.
#include <math.h>

#include <cstdint>

#include "cuda/portable.cuh"
#include "cuda/reduce.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

// Threads per block: quantize_u8 gives each one element, quantize_u8_per_row gives each block one row.
constexpr int kQuantizeThreads = 256;
constexpr int kInt8Tile = 64;          // output rows and columns per block
constexpr int kInt8TileK = 64;         // bytes of K per step
constexpr int kInt8TileWords = kInt8TileK / 4;
constexpr int kInt8Threads = 256;      // 16 x 16 threads
constexpr int kInt8PerThread = 4;      // 4 x 4 outputs per thread

// clamp(round(x / scale) + zero_point, 0, q_max); a NaN gives 0, as on the CPU.
__device__ __forceinline__ uint8_t quantize_code(float x, float scale, float zero_point, float q_max) {
  const float v = rintf(x / scale) + zero_point;
  return static_cast<uint8_t>(static_cast<int32_t>(fminf(fmaxf(v, 0.0f), q_max)));
}

// q (n) = quantize_code(x (n)).
__global__ void quantize_u8_kernel(uint8_t* q, const float* x, int64_t n, float scale, float zero_point,
                                   float q_max) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  q[i] = quantize_code(x[i], scale, zero_point, q_max);
}

// ActivationQuantParams::from_range({lo, hi}, bits) for lo <= 0 <= hi (quant/activation_quant.cpp), in its double
// arithmetic; a non-finite range (a row holding an infinity) gets scale NaN and zero point 0.
__device__ __forceinline__ void row_quant_params(float lo, float hi, float q_max, float* scale, int32_t* zero_point) {
  if (!(isfinite(lo) && isfinite(hi))) {
    *scale = NAN;
    *zero_point = 0;
  } else if (hi == lo) {  // an all-zero row
    *scale = 1.0f;
    *zero_point = 0;
  } else {
    float s = static_cast<float>((static_cast<double>(hi) - static_cast<double>(lo)) / static_cast<double>(q_max));
    if (!(s > 0.0f)) s = 0x1p-149f;  // a width below float's reach: the smallest denormal, as on the CPU
    *scale = s;
    *zero_point = static_cast<int32_t>(rint(-static_cast<double>(lo) / static_cast<double>(s)));
  }
}

// One block per row m of x (M,K): its range [min(0, min x), max(0, max x)] (fminf/fmaxf leave NaNs out), its
// parameters into scales[m], zero_points[m], its codes into q (M,K).
__global__ void quantize_u8_per_row_kernel(uint8_t* q, float* scales, int32_t* zero_points, const float* x,
                                           int64_t K, float q_max) {
  __shared__ float scratch[kWarpSize];
  const int64_t m = blockIdx.x;
  const float* row = x + m * K;
  float lo = 0.0f, hi = 0.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    lo = fminf(lo, row[k]);
    hi = fmaxf(hi, row[k]);
  }
  lo = -block_max(-lo, scratch);
  hi = block_max(hi, scratch);
  float scale;
  int32_t zero_point;
  row_quant_params(lo, hi, q_max, &scale, &zero_point);  // every thread has lo and hi: no broadcast needed
  if (threadIdx.x == 0) scales[m] = scale, zero_points[m] = zero_point;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    q[m * K + k] = quantize_code(row[k], scale, static_cast<float>(zero_point), q_max);
  }
}

// y (M,N) from a (M,K) uint8 and w (N,K) int8; see the file comment and quant/quantized_linear.cpp.
__global__ void int8_linear_kernel(float* y, const uint8_t* a, const int8_t* w, const int32_t* w_row_sums,
                                   const float* w_scales, int64_t num_w_scales, const float* bias, int64_t M,
                                   int64_t N, int64_t K, float a_scale, int32_t a_zero_point, const float* a_scales,
                                   const int32_t* a_zero_points) {
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
    if (m >= M) continue;
    const float row_scale = a_scales != nullptr ? a_scales[m] : a_scale;
    const int32_t row_zero_point = a_zero_points != nullptr ? a_zero_points[m] : a_zero_point;
    for (int j = 0; j < kInt8PerThread; ++j) {
      const int64_t n = col0 + tx * kInt8PerThread + j;
      if (n >= N) continue;
      const int32_t sum = acc[i][j] + (128 - row_zero_point) * w_row_sums[n];  // exact: see quant/int8_gemm.cpp
      const float combined_scale = row_scale * w_scales[num_w_scales == 1 ? 0 : n];
      y[m * N + n] = combined_scale * static_cast<float>(sum) + (bias != nullptr ? bias[n] : 0.0f);
    }
  }
}

inline void quantize_u8(uint8_t* q, const float* x, int64_t n, float scale, float zero_point, float q_max) {
  if (n == 0) return;
  BF_LAUNCH(quantize_u8_kernel, blocks_for(n, kQuantizeThreads), kQuantizeThreads, 0, q, x, n, scale, zero_point,
            q_max);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, quantize_u8);

inline void quantize_u8_per_row(uint8_t* q, float* scales, int32_t* zero_points, const float* x, int64_t M,
                                int64_t K, int bits) {
  if (M == 0) return;
  BF_CHECK(bits >= 2 && bits <= 8, "quantize_u8_per_row: ", bits, " bits outside [2, 8]");
  BF_LAUNCH(quantize_u8_per_row_kernel, static_cast<unsigned int>(M), kQuantizeThreads, 0, q, scales, zero_points, x,
            K, static_cast<float>((1 << bits) - 1));
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, quantize_u8_per_row);

inline void int8_linear(float* y, const uint8_t* a, const int8_t* w, const int32_t* w_row_sums, const float* w_scales,
                        int64_t num_w_scales, const float* bias, int64_t M, int64_t N, int64_t K, float a_scale,
                        int32_t a_zero_point, const float* a_scales, const int32_t* a_zero_points) {
  if (M == 0 || N == 0) return;
  const dim3 grid(blocks_for(N, kInt8Tile), blocks_for(M, kInt8Tile));
  BF_LAUNCH(int8_linear_kernel, grid, kInt8Threads, 0, y, a, w, w_row_sums, w_scales, num_w_scales, bias, M, N, K,
            a_scale, a_zero_point, a_scales, a_zero_points);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, int8_linear);

}  // namespace bertforge::cuda
