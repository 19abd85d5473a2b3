// core/bf16_convert.cpp — the paths of floats_to_bf16 (see bf16_convert.h).
//
// Per 32-bit lane u (a float's bits), as FloatToBf16: rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16, or for a NaN
// (|u| > 0x7f800000) (u >> 16) | 0x40, chosen by a compare; then the 32-bit lanes are narrowed to 16 bits (every
// value fits).
#include "core/bf16_convert.h"

#include "core/check.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bertforge {
namespace {

void floats_to_bf16_scalar(const float* src, bf16* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = FloatToBf16(src[i]);
}

#if defined(__x86_64__)

// GCC 12 reports the _mm512_undefined_* source operand of the unmasked shift and narrowing intrinsics as "may be
// used uninitialized" (a false positive: every lane is written).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

__attribute__((target("avx2"))) __m256i to_bf16_lanes_avx2(__m256i u) {
  const __m256i high = _mm256_srli_epi32(u, 16);
  const __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(high, _mm256_set1_epi32(1)));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  const __m256i quiet_nan = _mm256_or_si256(high, _mm256_set1_epi32(0x40));
  // |u| <= 0x7fffffff, so the signed compare orders it as unsigned.
  const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                            _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(rounded, quiet_nan, is_nan);
}

__attribute__((target("avx2"))) void floats_to_bf16_avx2(const float* src, bf16* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i a = to_bf16_lanes_avx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    const __m256i b = to_bf16_lanes_avx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 8)));
    // packus works per 128-bit lane: a0-3 b0-3 | a4-7 b4-7; the permute puts the quarters back in order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), packed);
  }
  floats_to_bf16_scalar(src + i, dst + i, n - i);
}

__attribute__((target("avx512f"))) void floats_to_bf16_avx512(const float* src, bf16* dst, int64_t n) {
  const __m512i one = _mm512_set1_epi32(1), half_minus_one = _mm512_set1_epi32(0x7fff);
  const __m512i quiet = _mm512_set1_epi32(0x40), magnitude = _mm512_set1_epi32(0x7fffffff);
  const __m512i infinity = _mm512_set1_epi32(0x7f800000);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(src + i);
    const __m512i high = _mm512_srli_epi32(u, 16);
    const __m512i bias = _mm512_add_epi32(half_minus_one, _mm512_and_si512(high, one));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    const __mmask16 is_nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, magnitude), infinity);
    const __m512i result = _mm512_mask_blend_epi32(is_nan, rounded, _mm512_or_si512(high, quiet));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(result));  // vpmovdw
  }
  floats_to_bf16_scalar(src + i, dst + i, n - i);
}

#endif  // __x86_64__

}  // namespace

void floats_to_bf16(VectorIsa isa, const float* src, bf16* dst, int64_t n) {
  BF_CHECK(vector_isa_supported(isa), "floats_to_bf16: the ", vector_isa_name(isa), " path is not available here");
  switch (isa) {
#if defined(__x86_64__)
    case VectorIsa::kAvx2: return floats_to_bf16_avx2(src, dst, n);
    case VectorIsa::kAvx512: return floats_to_bf16_avx512(src, dst, n);
#endif
    default: return floats_to_bf16_scalar(src, dst, n);
  }
}

void floats_to_bf16(const float* src, bf16* dst, int64_t n) { floats_to_bf16(default_vector_isa(), src, dst, n); }

}  // namespace bertforge
