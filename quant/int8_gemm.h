// quant/int8_gemm.h — integer GEMM for quantized linear layers: uint8 activations x int8 weights -> int32, the
// dequantizing epilogue back to float, and the quantization of float activations to uint8 codes.
//
//   acc (M,N) int32 = A (M,K) uint8  x  W^T,  W (N,K) int8 in [-127, 127]        (exact integer arithmetic)
//   y   (M,N) f32   = s_a[m] * s_w[n] * (acc - z_a[m] * rowsum_w[n]) + bias[n]
//
// A is an activation quantized asymmetric (q = clamp(round(x / s_a) + z_a, 0, 2^b - 1)), either per tensor with
// one static (s_a, z_a) (quantize_activations), or per row (per token) with each row's own parameters computed
// from its min and max at run time (quantize_activations_per_row); W a weight quantized symmetric per tensor or per
// output channel with at most 8 bits (quant/weight_quant.h: int8_codes()). Since x ~ s_a (a - z_a) and w ~ s_w q,
// the product needs only the integer sum acc and the row sums of W, computed once when W is packed.
//
// Exactness: every path returns the exact integer sum (tests compare with an int64 reference), for any K up to
// kInt8GemmMaxK (beyond it 255 * 127 * K could overflow int32). W must avoid -128: the AVX2 path relies on it
// (int8_gemm_avx2.cpp), and symmetric quantization never produces it.
//
// Paths (instruction sets), chosen once at run time, or explicitly for tests and benchmarks:
//   kAvx512Vnni  vpdpbusd, 64 multiply-adds per instruction (int8_gemm_avx512.cpp): A read unpacked, whole-K
//                register tiles, the epilogue in registers. Compiled with __attribute__((target)), used only where
//                __builtin_cpu_supports says the CPU has it (quantize_activations* then use AVX-512 too).
//   kAvx2        vpsignb + vpmaddubsw + vpmaddwd, exact (int8_gemm_avx2.cpp); for activations of at most 7 bits
//                (the calls' a_bits), vpmaddubsw + vpmaddwd alone, which cannot saturate there: faster, as exact.
//   kScalar      portable C++ on the same packed layout.
// Weights are packed once ("prepacked") into the layout of one path; pass the packed weight to any call.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace bertforge::quant {

enum class Int8GemmIsa : uint8_t { kScalar, kAvx2, kAvx512Vnni };

inline constexpr int64_t kInt8GemmMaxK = 65536;

const char* int8_gemm_isa_name(Int8GemmIsa isa);  // "scalar", "avx2", "avx512-vnni"
// Compiled into this build and supported by this CPU (and OS).
bool int8_gemm_isa_available(Int8GemmIsa isa);
std::vector<Int8GemmIsa> int8_gemm_available_isas();
// The fastest available path: VNNI, else AVX2, else scalar; or the one named by the environment variable
// BERTFORGE_INT8_ISA (scalar, avx2, avx512-vnni), to time a slower path on a CPU that has a faster one (an error
// when it is unknown or unavailable).
Int8GemmIsa int8_gemm_best_isa();

// W (N,K) int8 packed for one path, plus its row sums. Move-only.
//
// Layout: panels of NR consecutive output channels (NR = the path's tile width; the last panel padded with zero
// rows); inside a panel, K is padded with zeros to a multiple of 4 and stored in groups of 4:
//   panel p, k-group g, channel c, byte t  ->  data[p * Kp * NR + g * NR * 4 + c * 4 + t] = W[p*NR + c][4*g + t]
// so one k-group of a panel is NR 32-bit lanes, each holding 4 consecutive k of one channel: the operand order of
// vpdpbusd / vpmaddubsw. A block of K [pc, pc + kc) of a panel is contiguous.
struct PackedInt8Weight {
  Int8GemmIsa isa = Int8GemmIsa::kScalar;
  int64_t rows = 0, cols = 0;   // N, K
  int64_t nr = 0;               // panel width
  int64_t padded_cols = 0;      // Kp = K rounded up to a multiple of 4
  std::vector<int32_t> row_sums;  // (N): sum_k W[n][k]
  struct Free {
    void operator()(int8_t* p) const;
  };
  std::unique_ptr<int8_t[], Free> data;
};

// W (N,K) row-major with leading dim ldw. Throws on K > kInt8GemmMaxK, a value of -128, or an unavailable isa.
PackedInt8Weight pack_int8_weight(const int8_t* W, int64_t N, int64_t K, int64_t ldw,
                                  Int8GemmIsa isa = int8_gemm_best_isa());

// C (M,N) int32 (leading dim ldc) = A (M,K) uint8 (leading dim lda) x W^T. a_bits: every code of A is below
// 2^a_bits (checked: an error otherwise), which lets a path use a faster kernel.
void int8_gemm_s32(int64_t M, const uint8_t* A, int64_t lda, const PackedInt8Weight& W, int32_t* C, int64_t ldc,
                   int a_bits = 8);

// How the int32 sums become floats. The activation parameters are per tensor (a_scale, a_zero_point), or per row
// when a_scales and a_zero_points are given (both or neither; they then replace a_scale and a_zero_point).
struct Int8Epilogue {
  float a_scale = 1.0f;        // s_a
  int32_t a_zero_point = 0;    // z_a in [0, 255]
  const float* a_scales = nullptr;         // (M): s_a[m], or nullptr (per tensor)
  const int32_t* a_zero_points = nullptr;  // (M): z_a[m] in [0, 255], or nullptr (per tensor)
  int a_bits = 8;              // every activation code is below 2^a_bits (as int8_gemm_s32's a_bits)
  const float* w_scales = nullptr;  // s_w: 1 value (per tensor) or N (per output channel)
  int64_t num_w_scales = 1;
  const float* bias = nullptr;  // (N) or nullptr
};

// Y (M,N) f32 (leading dim ldy) = s_a[m] * s_w[n] * (A x W^T - z_a[m] * rowsum_w[n]) + bias[n], fused: the int32
// sums never leave the cache. The float arithmetic does not depend on the mode: rows whose per-row parameters all
// equal (s_a, z_a) give bit for bit the per-tensor call's output.
void int8_gemm_f32(int64_t M, const uint8_t* A, int64_t lda, const PackedInt8Weight& W, const Int8Epilogue& epilogue,
                   float* Y, int64_t ldy);

// Q (M,K) uint8 (leading dim ldq) = clamp(round(X / scale) + zero_point, 0, 2^bits - 1), X (M,K) f32 (leading
// dim ldx); round half to even; a NaN gets code 0. OpenMP over rows, vectorised.
void quantize_activations(const float* X, int64_t M, int64_t K, int64_t ldx, float scale, int32_t zero_point,
                          uint8_t* Q, int64_t ldq, int bits = 8);

// Dynamic per-row (per-token) quantization: for each row m of X (M,K) f32 (leading dim ldx),
//   (scales[m], zero_points[m]) = ActivationQuantParams::from_range({min(0, min_k X[m,k]), max(0, max_k X[m,k])},
//                                                                    bits)          (quant/activation_quant.h)
//   Q[m,:] (uint8, leading dim ldq) = the codes of quantize_activations with that row's parameters,
// so zero_points[m] lies in [0, 2^bits - 1] and 0 is exact. bits in [2, 8]. One pass over the row for its min and
// max, one to quantize it (the row stays in cache); OpenMP over rows. A NaN is left out of its row's range and gets
// code 0 (as in quantize_activations); an infinity is an error (BF_CHECK naming the row): it has no finite range.
void quantize_activations_per_row(const float* X, int64_t M, int64_t K, int64_t ldx, int bits, uint8_t* Q,
                                  int64_t ldq, float* scales, int32_t* zero_points);

}  // namespace bertforge::quant
