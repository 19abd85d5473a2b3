// quant/int8_gemm_avx512.cpp — the AVX-512 VNNI path of the int8 GEMM: an 8 x 32 tile with vpdpbusd, run over the
// whole of K on A as it lies in memory, with the dequantizing epilogue applied to the accumulator registers.
//
// vpdpbusd multiplies 4 uint8 activations by 4 int8 weights in each 32-bit lane and adds the four products to the
// lane's int32 accumulator, without intermediate saturation: exact, 64 multiply-adds per instruction on a zmm.
// Activations stay uint8 (no offset), so this path needs no row-sum correction beyond the zero point's.
//
// Compiled for every x86-64 build through __attribute__((target(...))) and picked at run time only when
// __builtin_cpu_supports reports avx512vnni (with avx512bw).
//
// Tile 8 x 32: 16 accumulators (8 rows x 2 zmm of 16 channels) + 2 weight registers + 1 broadcast of 32.
// The path has only a block kernel (Int8Microkernel::run_block, no packed-A microkernel): the four activation
// bytes of a k-group are broadcast straight from A's rows (row-major, no packed copy of A: a broadcast reads any 4
// bytes as cheaply as packed ones), the tile runs over all of K (no partial sums through memory: a weight panel,
// K x 32 bytes, is read from L1 or L2 by every row tile of a block), and the finished sums go through the epilogue
// in registers (int8_gemm_kernels.h: Int8BlockArgs). On a Zen 4 this reaches 0.87-0.93 of the one-core vpdpbusd
// peak (bench_int8_ceiling), against 0.5-0.7 for the packed-A, K-blocked microkernel it replaced.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "quant/int8_gemm_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace bertforge::quant::detail {
namespace {

constexpr int64_t MR = 8, NR = 32;

// GCC 12 reports _mm512_cvtepi32_ps's _mm512_undefined_ps() source operand as "may be used uninitialized" once
// inlined into a template (a false positive: the unmasked conversion overwrites every lane).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define BF_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// acc += vpdpbusd(a (uint8), w (int8)), in place. The intrinsic leaves GCC 12 copying every accumulator to a fresh
// register each k-group (16 vmovdqa64 per 16 vpdpbusd in the tile's loop); the tied asm operand keeps them put.
BF_VNNI_TARGET inline __m512i dpbusd(__m512i acc, __m512i a, __m512i w) {
  asm("vpdpbusd %[w], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [w] "v"(w));
  return acc;
}

// One tile of R <= MR rows (i, ..., i + R - 1) x 32 channels (j, ...; `cols` of them valid) over all of K, then
// the epilogue. b: the weight panel of channel j (Kp x 32, int8_gemm.h's layout).
template <int R>
BF_VNNI_TARGET void block_tile(const Int8BlockArgs& p, const int8_t* b, int64_t i, int64_t j, int64_t cols) {
  const uint8_t* a[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) a[r] = p.A + (i + r) * p.lda;
  __m512i c[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) c[r][0] = _mm512_setzero_si512(), c[r][1] = _mm512_setzero_si512();
  const int64_t K = p.K, full = K / 4 * 4;
  for (int64_t k = 0; k < full; k += 4) {
    const __m512i w0 = _mm512_loadu_si512(b);       // channels 0..15, 4 k each
    const __m512i w1 = _mm512_loadu_si512(b + 64);  // channels 16..31
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int32_t a4;
      std::memcpy(&a4, a[r] + k, 4);
      const __m512i ar = _mm512_set1_epi32(a4);
      c[r][0] = dpbusd(c[r][0], ar, w0);
      c[r][1] = dpbusd(c[r][1], ar, w1);
    }
    b += NR * 4;
  }
  if (full < K) {  // the last k-group holds 1 to 3 valid k (the weight is zero beyond K); never read past a row
    const __m512i w0 = _mm512_loadu_si512(b), w1 = _mm512_loadu_si512(b + 64);
    const __mmask16 valid = static_cast<__mmask16>((1u << (K - full)) - 1);  // masked bytes are not read
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512i ar = _mm512_broadcastd_epi32(_mm_maskz_loadu_epi8(valid, a[r] + full));
      c[r][0] = dpbusd(c[r][0], ar, w0);
      c[r][1] = dpbusd(c[r][1], ar, w1);
    }
  }
  // Epilogue: the per-channel vectors once per tile, then row by row.
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols <= 16 ? __mmask16(0) : __mmask16((1u << (cols - 16)) - 1);
  const __m512i rs0 = _mm512_maskz_loadu_epi32(m0, p.row_sums + j), rs1 = _mm512_maskz_loadu_epi32(m1, p.row_sums + j + 16);
  if (p.C != nullptr) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const int32_t zero = p.a_zero_points != nullptr ? p.a_zero_points[i + r] : p.a_zero_point;
      const __m512i z = _mm512_set1_epi32(zero);
      int32_t* out = p.C + (i + r) * p.ldc + j;
      _mm512_mask_storeu_epi32(out, m0, _mm512_sub_epi32(c[r][0], _mm512_mullo_epi32(z, rs0)));
      _mm512_mask_storeu_epi32(out + 16, m1, _mm512_sub_epi32(c[r][1], _mm512_mullo_epi32(z, rs1)));
    }
    return;
  }
  const __m512 ws0 = _mm512_maskz_loadu_ps(m0, p.w_scales + j), ws1 = _mm512_maskz_loadu_ps(m1, p.w_scales + j + 16);
  const __m512 bias0 = _mm512_maskz_loadu_ps(m0, p.bias + j), bias1 = _mm512_maskz_loadu_ps(m1, p.bias + j + 16);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const int32_t zero = p.a_zero_points != nullptr ? p.a_zero_points[i + r] : p.a_zero_point;
    const float scale = p.a_scales != nullptr ? p.a_scales[i + r] : p.a_scale;
    const __m512i z = _mm512_set1_epi32(zero);
    const __m512 s = _mm512_set1_ps(scale);
    const __m512 v0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(c[r][0], _mm512_mullo_epi32(z, rs0)));
    const __m512 v1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(c[r][1], _mm512_mullo_epi32(z, rs1)));
    float* out = p.Y + (i + r) * p.ldy + j;
    _mm512_mask_storeu_ps(out, m0, _mm512_fmadd_ps(_mm512_mul_ps(s, ws0), v0, bias0));
    _mm512_mask_storeu_ps(out + 16, m1, _mm512_fmadd_ps(_mm512_mul_ps(s, ws1), v1, bias1));
  }
}

// Rows [i0, i1) x channels [j0, j1): each 32-channel weight panel in turn (it stays in cache), down the rows.
BF_VNNI_TARGET void block_vnni(const Int8BlockArgs& p, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const int64_t Kp = p.W->padded_cols;
  for (int64_t j = j0; j < j1; j += NR) {
    const int8_t* b = p.W->data.get() + (j / NR) * Kp * NR;
    const int64_t cols = std::min(NR, j1 - j);
    int64_t i = i0;
    for (; i + MR <= i1; i += MR) block_tile<MR>(p, b, i, j, cols);
    switch (i1 - i) {
      case 0: break;
      case 1: block_tile<1>(p, b, i, j, cols); break;
      case 2: block_tile<2>(p, b, i, j, cols); break;
      case 3: block_tile<3>(p, b, i, j, cols); break;
      case 4: block_tile<4>(p, b, i, j, cols); break;
      case 5: block_tile<5>(p, b, i, j, cols); break;
      case 6: block_tile<6>(p, b, i, j, cols); break;
      default: block_tile<7>(p, b, i, j, cols); break;
    }
  }
}

// ---- Activation quantization rows (Int8RowKernels) -------------------------------------------------------------

BF_VNNI_TARGET void quantize_row_avx512(const float* x, int64_t K, float scale, float z, float q_max, uint8_t* q) {
  const __m512 s = _mm512_set1_ps(scale), zv = _mm512_set1_ps(z), top = _mm512_set1_ps(q_max);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + k);
    // nearbyint (round half to even, the default mode) of the IEEE quotient, as the portable loop
    __m512 c = _mm512_add_ps(_mm512_roundscale_ps(_mm512_div_ps(v, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                             zv);
    c = _mm512_max_ps(c, zero);  // the second operand when either is NaN: a NaN becomes 0, as std::max(0.0f, NaN)
    c = _mm512_min_ps(c, top);
    _mm_mask_storeu_epi8(q + k, m, _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(c)));
  }
}

BF_VNNI_TARGET bool finite_row_range_avx512(const float* x, int64_t K, float* lo, float* hi) {
  __m512 lo_v = _mm512_setzero_ps(), hi_v = _mm512_setzero_ps(), not_finite = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + k);  // zeros beyond K change neither bound (both hold 0)
    // min(v, lo) returns lo on a tie of zeros (of either sign) and on NaN: the running bounds stay +0 until a
    // value is strictly below (above) them, as the portable `v < lo ? v : lo`.
    lo_v = _mm512_min_ps(v, lo_v);
    hi_v = _mm512_max_ps(v, hi_v);
    not_finite = _mm512_add_ps(not_finite, _mm512_sub_ps(v, v));  // NaN exactly when some v is NaN or infinite
  }
  if (_mm512_cmp_ps_mask(not_finite, not_finite, _CMP_UNORD_Q) != 0) return false;
  *lo = _mm512_reduce_min_ps(lo_v);
  *hi = _mm512_reduce_max_ps(hi_v);
  return true;
}

constexpr Int8RowKernels kRowKernels{quantize_row_avx512, finite_row_range_avx512};

bool cpu_has_vnni() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}

// No K block (kc 0) and no packed-A microkernel: run_block does the whole of K.
constexpr Int8Microkernel kVnni{Int8GemmIsa::kAvx512Vnni, MR, NR, /*kc=*/0, /*signed_a=*/false, /*max_a_bits=*/8,
                                /*run=*/nullptr, cpu_has_vnni, block_vnni};

}  // namespace

const Int8Microkernel* avx512_vnni_microkernel() { return &kVnni; }
const Int8RowKernels* avx512_row_kernels() { return &kRowKernels; }

}  // namespace bertforge::quant::detail

#else

namespace bertforge::quant::detail {
const Int8Microkernel* avx512_vnni_microkernel() { return nullptr; }
const Int8RowKernels* avx512_row_kernels() { return nullptr; }
}  // namespace bertforge::quant::detail

#endif
