// ops/cpu/gemm_avx512_tile.h — internal to the CPU GEMM: the C-tile prologue and epilogue that the two AVX-512
// microkernels (FP32 FMA in gemm_avx512.cpp, bf16 vdpbf16ps in gemm_bf16_avx512.cpp) share. Their tile is MR rows of
// 32 floats, held in two zmm accumulators per row: c0[i] = C(i, 0..15), c1[i] = C(i, 16..31).
// Always inlined into the microkernels, so that the accumulators stay in registers.
#pragma once

#include <cstdint>

#if defined(__x86_64__)
#include <immintrin.h>

namespace bertforge::cpu::detail {

#define BF_AVX512_TILE_INLINE __attribute__((target("avx512f"), always_inline)) inline

// Touches the C tile (MR x 32, leading dim ldc) so that its cache lines arrive while the k loop runs.
template <int64_t MR>
BF_AVX512_TILE_INLINE void prefetch_c_tile(const float* C, int64_t ldc) {
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 31), _MM_HINT_T0);
  }
}

// C(i, :) = alpha * acc(i, :) + beta * C(i, :) (one FMA, as every path rounds it: gemm_kernels.h), without reading
// C when beta == 0.
template <int64_t MR>
BF_AVX512_TILE_INLINE void store_c_tile(const __m512 (&c0)[MR], const __m512 (&c1)[MR], float alpha, float beta,
                                        float* C, int64_t ldc) {
  const __m512 valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
  if (beta != 0.0f) {
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i) {
      float* row = C + i * ldc;
      _mm512_storeu_ps(row, _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(row), _mm512_mul_ps(valpha, c0[i])));
      _mm512_storeu_ps(row + 16, _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(row + 16), _mm512_mul_ps(valpha, c1[i])));
    }
  } else {
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i) {
      _mm512_storeu_ps(C + i * ldc, _mm512_mul_ps(valpha, c0[i]));
      _mm512_storeu_ps(C + i * ldc + 16, _mm512_mul_ps(valpha, c1[i]));
    }
  }
}

#undef BF_AVX512_TILE_INLINE

}  // namespace bertforge::cpu::detail

#endif  // __x86_64__
