// ops/cpu/gemm_bf16_avx512.cpp — the AVX512-BF16 path of the 16-bit GEMM: bf16 operands, FP32 sums, a 12 x 32
// tile of vdpbf16ps, and the packing of bf16 operands into k-pair panels (the driver is gemm.cpp).
//
// vdpbf16ps multiplies the two bf16 of each 32-bit lane of a by those of b and adds both products to the lane's
// FP32 accumulator: 32 multiply-adds per zmm instruction, twice an FP32 FMA's. Each product of two bf16 is exact
// in FP32 and is added with its own rounding (to nearest even), the high half's product first (checked on Zen 4,
// as Intel's pseudo-code has it); subnormal inputs and outputs are flushed to zero. So the operands are packed as
// k pairs with the EVEN k in the high half (gemm_kernels.h): a B micro-panel step is 32 lanes (2 zmm) of
// (B(2s, j) << 16 | B(2s+1, j)), an A micro-panel step 12 lanes of (A(i, 2s) << 16 | A(i, 2s+1)), each broadcast to
// a zmm. Then each output element is summed in k order with one rounding per product, exactly as the FMA of the
// FP32 paths does on the widened values: with the same KC (256, gemm_kernels.h) this path gives the same bits as
// the widening ones, subnormals aside. An odd K's last pair has a zero low half (adding +0 changes nothing).
//
// Tile MR x NR = 12 x 32 (as the FP32 AVX-512 tile): 24 accumulators + 2 B registers + 1 broadcast = 27 of the 32
// zmm; 24 independent chains cover vdpbf16ps's latency (6 on Zen 4) many times over. Each pair step does 24
// vdpbf16ps (768 multiply-adds) for 14 loads. 12 rows measured equal to 14 on the linear-layer shapes and 5-15%
// faster on the 128-row attention products (less padding in the last row tile).
// Blocking: KC = 256 k (128 pairs): a B micro-panel is 128 x 32 x 4 B = 16 KiB and an A micro-panel 6 KiB, both in
// L1; MC <= 288: an A block is 288 x 128 x 4 B = 144 KiB (L2); NC = 4096: a B block 2 MiB (L3). KC 256, 384 and 512
// measured within 3% of each other on Zen 4; 256 is the KC of every path (same bits, above).
//
// Packing (vectorised with AVX-512BW/VL: the path only runs where the CPU has them):
//   lines adjacent in memory (op(B) of x @ W, op(A) of dY^T @ x): two k-rows at a time, zero-extended to 32 bits
//     and interleaved (masked loads for ragged widths);
//   lines contiguous along k (op(B) of x @ W^T, op(A) of x @ W): each line is already a run of bf16 pairs, i.e.
//     32-bit words (even k in the low half), so the panel is a 32-bit transpose (8 x 8 blocks in registers) and a
//     16-bit rotation of each word.
//
// Compiled with __attribute__((target(...))) in every x86-64 build, run where cpuid reports AVX512-BF16 (and the
// AVX-512F/BW/VL it builds on).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/check.h"
#include "ops/cpu/gemm_avx512_tile.h"
#include "ops/cpu/gemm_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bertforge::cpu::detail {

#if defined(__x86_64__)

#define BF_TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The pair (src[0], src[1]) as one 32-bit word: the first (even) k in the high half, which vdpbf16ps adds first;
// the low half zero when !has_second (the last k of an odd kc).
inline uint32_t pair_at(const uint16_t* src, bool has_second) {
  return uint32_t{src[0]} << 16 | (has_second ? uint32_t{src[1]} : 0u);
}

// Lines adjacent in memory (line_stride 1): step s of every panel interleaves k-rows 2s and 2s+1.
template <int64_t R>
BF_TARGET_BF16 void pack_adjacent_lines(const uint16_t* src, int64_t elem_stride, int64_t lines, int64_t kc,
                                        uint32_t* dst) {
  const int64_t steps = ceil_div(kc, 2), panels = ceil_div(lines, R);
  for (int64_t s = 0; s < steps; ++s) {
    const uint16_t* row0 = src + 2 * s * elem_stride;
    const uint16_t* row1 = row0 + elem_stride;
    const bool has_row1 = 2 * s + 1 < kc;
    for (int64_t q = 0; q < panels; ++q) {
      uint32_t* out = dst + q * R * steps + s * R;
      const int64_t width = std::min(R, lines - q * R);
      for (int64_t l = 0; l < R; l += 16) {
        const int64_t valid = std::clamp<int64_t>(width - l, 0, 16);
        const __mmask16 load_mask = static_cast<__mmask16>((1u << valid) - 1);
        // Zero-masked forms throughout: GCC 12 warns about the unmasked ones (their _mm512_undefined_epi32).
        // k-row 2s into the high halves, 2s+1 (or zero) into the low halves.
        const __m512i even =
            _mm512_maskz_cvtepu16_epi32(load_mask, _mm256_maskz_loadu_epi16(load_mask, row0 + q * R + l));
        __m512i pair = _mm512_maskz_slli_epi32(load_mask, even, 16);
        if (has_row1) {
          pair = _mm512_or_si512(pair, _mm512_maskz_cvtepu16_epi32(
                                           load_mask, _mm256_maskz_loadu_epi16(load_mask, row1 + q * R + l)));
        }
        if (l + 16 <= R) {
          _mm512_storeu_si512(out + l, pair);
        } else {
          _mm512_mask_storeu_epi32(out + l, static_cast<__mmask16>((1u << (R - l)) - 1), pair);
        }
      }
    }
  }
}

// 8 x 8 transpose of 32-bit words: rows r[0..7] in, columns out in r[0..7].
BF_TARGET_BF16 inline void transpose_8x8_epi32(__m256i r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; ++i) u[i] = _mm256_castsi256_ps(r[i]);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(u[i], u[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(u[i], u[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    r[i + 4] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}

// Lines contiguous along k (elem_stride 1): line l's pairs are the 32-bit words at src + l * line_stride (2-byte
// aligned only: unaligned loads), so each panel is a transpose, 8 lines x 8 pairs at a time.
template <int64_t R>
BF_TARGET_BF16 void pack_contiguous_lines(const uint16_t* src, int64_t line_stride, int64_t lines, int64_t kc,
                                          uint32_t* dst) {
  const int64_t steps = ceil_div(kc, 2), whole_pairs = kc / 2, panels = ceil_div(lines, R);
  for (int64_t q = 0; q < panels; ++q) {
    const uint16_t* base = src + q * R * line_stride;
    uint32_t* out = dst + q * R * steps;
    const int64_t width = std::min(R, lines - q * R);
    int64_t s = 0;
    for (; s + 8 <= whole_pairs; s += 8) {
      for (int64_t l0 = 0; l0 < R; l0 += 8) {
        // Lines past the panel's width read the last real line again (in bounds) and are stored as zeros.
        const int64_t valid = std::clamp<int64_t>(width - l0, 0, 8), stored = std::min<int64_t>(8, R - l0);
        __m256i r[8];
        for (int64_t i = 0; i < 8; ++i) {
          const int64_t line = std::min(l0 + i, width - 1);
          r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + line * line_stride + 2 * s));
        }
        transpose_8x8_epi32(r);  // r[i]: pair s + i of the 8 lines, each as in memory: even k low, odd k high
        const __mmask8 keep = static_cast<__mmask8>((1u << valid) - 1);
        const __mmask8 store = static_cast<__mmask8>((1u << stored) - 1);
        for (int64_t i = 0; i < 8; ++i) {
          const __m256i swapped = _mm256_maskz_rol_epi32(keep, r[i], 16);  // even k to the high half
          _mm256_mask_storeu_epi32(out + (s + i) * R + l0, store, swapped);
        }
      }
    }
    for (; s < steps; ++s) {  // the last pairs, and an odd kc's half pair
      for (int64_t l = 0; l < R; ++l) {
        out[s * R + l] = l < width ? pair_at(base + l * line_stride + 2 * s, 2 * s + 1 < kc) : 0u;
      }
    }
  }
}

template <int64_t R>
void pack_pairs(const bf16* src, int64_t line_stride, int64_t elem_stride, int64_t lines, int64_t kc,
                uint32_t* dst) {
  const uint16_t* bits = &src->bits;
  if (line_stride == 1) return pack_adjacent_lines<R>(bits, elem_stride, lines, kc, dst);
  // The transpose flags give one of the two strides 1 (gemm.cpp: op(X)(r, c) = X[r * ld + c] or X[c * ld + r]).
  BF_CHECK(elem_stride == 1, "bf16 GEMM packing: line stride ", line_stride, " and element stride ", elem_stride);
  pack_contiguous_lines<R>(bits, line_stride, lines, kc, dst);
}

}  // namespace

BF_TARGET_BF16 void Avx512Bf16Kernel::microkernel(int64_t steps, const uint32_t* a, const uint32_t* b, float alpha,
                                                  float beta, float* C, int64_t ldc) {
  static_assert(NR == 32 && KC % 2 == 0, "a C row is two zmm registers; K blocks hold whole pairs");
  prefetch_c_tile<MR>(C, ldc);
  // c0[i] holds C(i, 0..15), c1[i] C(i, 16..31); fully unrolled loops with constant indices keep them in registers.
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i) c0[i] = _mm512_setzero_ps(), c1[i] = _mm512_setzero_ps();

#pragma GCC unroll 2
  for (int64_t s = 0; s < steps; ++s) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b);       // pairs B(2s, j) << 16 | B(2s+1, j), j = 0..15
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + 16);  // j = 16..31
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[i]));  // A(i, 2s) << 16 | A(i, 2s+1)
      c0[i] = _mm512_dpbf16_ps(c0[i], ai, b0);
      c1[i] = _mm512_dpbf16_ps(c1[i], ai, b1);
    }
    a += MR;
    b += NR;
  }

  store_c_tile<MR>(c0, c1, alpha, beta, C, ldc);
}

void Avx512Bf16Kernel::pack_a(const bf16* src, int64_t line_stride, int64_t elem_stride, int64_t lines, int64_t kc,
                              uint32_t* dst) {
  pack_pairs<MR>(src, line_stride, elem_stride, lines, kc, dst);
}

void Avx512Bf16Kernel::pack_b(const bf16* src, int64_t line_stride, int64_t elem_stride, int64_t lines, int64_t kc,
                              uint32_t* dst) {
  pack_pairs<NR>(src, line_stride, elem_stride, lines, kc, dst);
}

bool Avx512Bf16Kernel::cpu_supports() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

#undef BF_TARGET_BF16

#else  // not x86-64: never chosen

void Avx512Bf16Kernel::microkernel(int64_t, const uint32_t*, const uint32_t*, float, float, float*, int64_t) {
  BF_FAIL("the avx512-bf16 GEMM microkernel is not compiled for this architecture");
}
void Avx512Bf16Kernel::pack_a(const bf16*, int64_t, int64_t, int64_t, int64_t, uint32_t*) {
  BF_FAIL("the avx512-bf16 GEMM packing is not compiled for this architecture");
}
void Avx512Bf16Kernel::pack_b(const bf16*, int64_t, int64_t, int64_t, int64_t, uint32_t*) {
  BF_FAIL("the avx512-bf16 GEMM packing is not compiled for this architecture");
}
bool Avx512Bf16Kernel::cpu_supports() { return false; }

#endif

}  // namespace bertforge::cpu::detail
