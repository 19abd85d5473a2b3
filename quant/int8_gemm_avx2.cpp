// quant/int8_gemm_avx2.cpp — the AVX2 microkernels of the int8 GEMM: tiles of exact int32 sums, 4 x 16 for 8-bit
// activations (the sign trick below), 6 x 16 for activations of at most 7 bits (plain vpmaddubsw).
//
// AVX2 has no int8 dot-product instruction. Its closest, vpmaddubsw (uint8 x int8 -> int16, adding pairs),
// SATURATES: with uint8 activations and int8 weights a pair can reach 255 * 127 * 2 = 64770 > 32767, so the direct
// use (what fbgemm does, hence PyTorch's "reduce_range" 7-bit activations on AVX2) is not exact. Two exact options:
//
//   (1) widen both operands to int16 and use vpmaddwd (int16 x int16 -> int32, adding pairs, no saturation):
//       16 multiply-adds per vpmaddwd, plus a vpaddd; operands take twice the bytes.
//   (2) the llama.cpp sign trick, used here: keep activations as int8 a' = a - 128 in [-128, 127] and weights
//       w in [-127, 127], and compute  vpmaddubsw(|a'|, sign(w, a'))  — |a'| <= 128 read as the UNSIGNED operand
//       (vpabsb turns -128 into 0x80, which is 128 unsigned), w * sign(a') in [-127, 127] as the signed one.
//       The sign must go on w, never on a': vpsignb would wrap -(-128) back to -128 (tested: the all-zero-
//       activation case caught exactly that), while -w always fits because w = -128 is excluded (symmetric
//       quantization never produces it; pack_int8_weight checks). Each product is |a'| * |w| <= 128 * 127 = 16256,
//       a pair at most 32512 <= 32767: vpmaddubsw never saturates, the sum is exact. vpmaddwd with ones then adds
//       the int16 pairs into int32: 32 multiply-adds per vpmaddubsw + vpmaddwd, the same multiplier work as (1),
//       with int8 operands (half the bytes of (1) to pack and stream) and k in groups of 4 (the VNNI layout).
//   The driver adds 128 * rowsum(w) back to turn sum(a' w) into sum(a w).
//
// Speed on AMD Zen 3 (the development machine, bench_int8_gemm, 2 threads, BERT-base shapes): this kernel reaches
// 180-250 GOP/s against 157-167 GFLOP/s for our FP32 GEMM (1.1-1.5x), while PyTorch's onednn int8 reaches
// 245-282 GOP/s on the same shapes. bench_int8_ceiling times the instruction sequences alone, on registers: this
// one (sign trick) peaks at 1.37x the FP32 FMA's multiply-adds per second, int16 vpmaddwd (option 1) at 1.52x, and
// plain vpmaddubsw + vpmaddwd at 1.90x, which is exact only for activations of at most 7 bits. So no exact 8-bit
// AVX2 kernel on this CPU can be twice as fast as the FP32 GEMM. VNNI (vpdpbusd: 64 multiply-adds in one
// instruction) removes the pair altogether.
//
// The 8-bit tile, 4 x 16: 8 accumulators (4 rows x 2 registers of 8 channels) + 2 weight registers + 1 broadcast
// activation and its absolute value + 1 temporary + the ones vector = 14 of the 16 ymm registers.
#include <cstdint>

#include "quant/int8_gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace bertforge::quant::detail {
namespace {

constexpr int64_t NR = 16;
constexpr int64_t MR = 4;   // rows of the 8-bit kernel's tile
constexpr int64_t MR7 = 6;  // rows of the 7-bit kernel's tile

// The tile's kernel for `Rows` rows; kSignTrick: 8-bit activations stored as a - 128 (the sign trick above), else
// activations of at most 7 bits stored as they are.
//
// Activations of at most 7 bits (a <= 127): vpmaddubsw(a, w) cannot saturate (a pair is at most 2 * 127 * 127 =
// 32258), so the sign trick is not needed: per row one broadcast and, per weight register, vpmaddubsw + vpmaddwd +
// vpaddd (bench_int8_ceiling: 1.90x the FP32 FMA's rate for this sequence, against 1.37x with the sign trick).
// Without the absolute value and sign registers, 6 rows fit: 12 accumulators + 2 weights + the broadcast + ones =
// 16 ymm registers. bench_int8_gemm: 1.6-1.85x our FP32 GEMM on BERT-base shapes, about onednn's int8 rate.
// The loops over rows and registers have constant bounds and unroll fully, so acc stays in registers.
template <int Rows, bool kSignTrick>
__attribute__((target("avx2"))) void microkernel(int64_t kq, const uint8_t* a, const int8_t* b, int32_t* tile) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[Rows][2];
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t g = 0; g < kq; ++g) {
    const __m256i w[2] = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)),        // channels 0..7, 4 k each
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32))};  // channels 8..15
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) {
      int32_t a4;  // the row's 4 k, broadcast to every lane
      __builtin_memcpy(&a4, a + r * 4, 4);
      const __m256i ar = _mm256_set1_epi32(a4);
      // Sign trick: acc += madd(maddubs(|a'|, sign(w, a')), 1); 7-bit: acc += madd(maddubs(a, w), 1).
      const __m256i unsigned_a = kSignTrick ? _mm256_abs_epi8(ar) : ar;
#pragma GCC unroll 2
      for (int j = 0; j < 2; ++j) {
        const __m256i signed_w = kSignTrick ? _mm256_sign_epi8(w[j], ar) : w[j];
        acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(_mm256_maddubs_epi16(unsigned_a, signed_w), ones));
      }
    }
    a += Rows * 4;
    b += NR * 4;
  }
  __m256i* t = reinterpret_cast<__m256i*>(tile);
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r) {
    _mm256_storeu_si256(t + 2 * r, acc[r][0]);
    _mm256_storeu_si256(t + 2 * r + 1, acc[r][1]);
  }
}

bool cpu_has_avx2() { return __builtin_cpu_supports("avx2"); }

// KC = 768: a B panel block (768 x 16 = 12 KiB) and an A panel (4 x 768 = 3 KiB) fit in a 32 KiB L1 together;
// BERT-base's K = 768 is then a single block, and K = 3072 four.
constexpr Int8Microkernel kAvx2{Int8GemmIsa::kAvx2, MR, NR, 768, /*signed_a=*/true, /*max_a_bits=*/8,
                                microkernel<MR, /*kSignTrick=*/true>, cpu_has_avx2};
constexpr Int8Microkernel kAvx2SevenBit{Int8GemmIsa::kAvx2, MR7, NR, 768, /*signed_a=*/false, /*max_a_bits=*/7,
                                        microkernel<MR7, /*kSignTrick=*/false>, cpu_has_avx2};

}  // namespace

const Int8Microkernel* avx2_microkernel() { return &kAvx2; }
const Int8Microkernel* avx2_7bit_microkernel() { return &kAvx2SevenBit; }

}  // namespace bertforge::quant::detail

#else

namespace bertforge::quant::detail {
const Int8Microkernel* avx2_microkernel() { return nullptr; }
const Int8Microkernel* avx2_7bit_microkernel() { return nullptr; }
}  // namespace bertforge::quant::detail

#endif
