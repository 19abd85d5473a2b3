// quant/int8_gemm_kernels.h — internal to the int8 GEMM: the register-tile microkernels, one per instruction set.
//
// A microkernel computes one MR x NR tile of int32 sums over kq groups of 4 k:
//   tile[r * NR + c] = sum over g < kq, t < 4 of  a[g * MR * 4 + r * 4 + t] * b[g * NR * 4 + c * 4 + t]
// where a is a packed MR-row panel of activations (uint8, or int8 holding a - 128 when signed_a) and b a KC-block of
// one weight panel (int8, layout in int8_gemm.h). The tile is overwritten. The driver (int8_gemm.cpp) does the
// blocking, packing, threading and epilogue for all of them.
#pragma once

#include <cstdint>

#include "quant/int8_gemm.h"

namespace bertforge::quant::detail {

// A block of the output over the whole of K, for a path that reads A row-major (no packing) and keeps the sums in
// registers until the epilogue: per row m and channel n,
//   v = acc[m][n] - zero_m * row_sums[n]    zero_m = a_zero_points ? a_zero_points[m] : a_zero_point
//   C[m][n] = v                                                        (when C is set: int32 output), or
//   Y[m][n] = fma(s_m * w_scales[n], float(v), bias[n])              s_m = a_scales ? a_scales[m] : a_scale
// (the same float operations per tensor and per row, so equal parameters give equal floats).
struct Int8BlockArgs {
  const uint8_t* A = nullptr;  // (M,K) row-major, leading dim lda
  int64_t lda = 0, K = 0;
  const PackedInt8Weight* W = nullptr;
  const int32_t* row_sums = nullptr;       // (N)
  const int32_t* a_zero_points = nullptr;  // (M) or nullptr
  int32_t a_zero_point = 0;
  int32_t* C = nullptr;
  int64_t ldc = 0;
  float* Y = nullptr;
  int64_t ldy = 0;
  const float* a_scales = nullptr;  // (M) or nullptr
  float a_scale = 1.0f;
  const float* w_scales = nullptr;  // (N)
  const float* bias = nullptr;      // (N), zeros where the layer has none
};

struct Int8Microkernel {
  Int8GemmIsa isa;
  int64_t mr, nr;   // register tile
  int64_t kc;       // K block (multiple of 4): an A panel (MR x KC) and a B panel (KC x NR) share L1
  bool signed_a;    // the A panel holds a - 128 as int8 (the driver adds 128 * rowsum back)
  int max_a_bits;   // exact only for activation codes below 2^max_a_bits
  void (*run)(int64_t kq, const uint8_t* a, const int8_t* b, int32_t* tile);  // nullptr when run_block is set
  bool (*cpu_supports)();
  // Optional (nullptr: the driver packs A and runs `run`): rows [i0, i1) x channels [j0, j1) of the output, j0 a
  // multiple of nr, over all of K with the epilogue fused (Int8BlockArgs). Exact sums, as `run`.
  void (*run_block)(const Int8BlockArgs& args, int64_t i0, int64_t i1, int64_t j0, int64_t j1) = nullptr;
};

// The row loops of activation quantization (int8_gemm.cpp: quantize_activations, quantize_activations_per_row) in
// a path's instructions, bit for bit the portable loops' results:
//   quantize_row      q[k] = clamp(nearbyint(x[k] / scale) + z, 0, q_max) (a NaN gets 0), x (K) -> q (K)
//   finite_row_range  [lo, hi] = [min(0, min_k x[k]), max(0, max_k x[k])] and true when every x[k] is finite;
//                     false otherwise (lo, hi unspecified: the caller's portable pass sorts NaNs from infinities)
struct Int8RowKernels {
  void (*quantize_row)(const float* x, int64_t K, float scale, float z, float q_max, uint8_t* q);
  bool (*finite_row_range)(const float* x, int64_t K, float* lo, float* hi);
};

// nullptr when the path is not compiled into this build.
const Int8Microkernel* scalar_microkernel();
const Int8Microkernel* avx2_microkernel();
const Int8Microkernel* avx2_7bit_microkernel();  // AVX2, activations of at most 7 bits: same weight layout
const Int8Microkernel* avx512_vnni_microkernel();
const Int8RowKernels* avx512_row_kernels();  // needs avx512f + avx512bw (checked by the caller)

}  // namespace bertforge::quant::detail
