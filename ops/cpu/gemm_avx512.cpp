// ops/cpu/gemm_avx512.cpp — the AVX-512F microkernel of the FP32 GEMM: a 12 x 32 tile (the driver is gemm.cpp).
//
// Tile MR x NR = 12 x 32: the C tile is 12 rows x 2 zmm = 24 accumulators, plus 2 zmm for a row of B and 1 for a
// broadcast element of A = 27 of the 32 zmm registers. Each k step does 24 FMAs (384 multiply-adds) for 14 loads
// (2 vector + 12 broadcast), with 24 independent chains (more than the 2 x 4 = 8 in flight that two pipes of
// latency 4 need). 12 rows rather than 14 (28 accumulators): equal on the linear-layer shapes, and 128-row attention
// products waste 4 rows of work in their last tile instead of 12 (measured 5-15% faster there on Zen 4).
// Blocking (Zen 4: 32 KiB L1d, 1 MiB L2 per core, 32 MiB L3):
//   KC = 256, the KC of every path (so that all give the same bits, gemm_kernels.h): the B micro-panel
//             (KC x NR x 4 B = 32 KiB) streams from L1/L2 at 128 B per 24 FMAs while the A micro-panel (12 KiB) stays
//             in L1. Measured on Zen 4 over KC 128 ... 512: 256 to 512 within 2-3% (longer K blocks: fewer passes
//             over C), 128 slower.
//   MC <= 288 (24 tiles): an A block (MC x KC x 4 B = 288 KiB) stays in L2.
//   NC = 4096: a B block (KC x NC x 4 B = 4 MiB) fits in L3; BERT-base widths (768, 3072) are one jc step.
// On Zen 4, which runs a zmm FMA as two 256-bit halves on the AVX2 pipes, this kernel has the AVX2 peak and measured
// 1.01-1.14x the AVX2 kernel on BERT shapes (gemm.cpp); on cores with full-width AVX-512 its peak is twice AVX2's.
//
// Compiled with __attribute__((target("avx512f"))) in every x86-64 build, run where cpuid reports AVX-512F.
#include <cstdint>

#include "core/check.h"
#include "ops/cpu/gemm_avx512_tile.h"
#include "ops/cpu/gemm_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bertforge::cpu::detail {

#if defined(__x86_64__)

__attribute__((target("avx512f"))) void Avx512Kernel::microkernel(int64_t kc, const float* a, const float* b,
                                                                  float alpha, float beta, float* C, int64_t ldc) {
  static_assert(NR == 32, "the AVX-512 microkernel holds a C row in two zmm registers");
  prefetch_c_tile<MR>(C, ldc);
  // c0[i] holds C(i, 0..15), c1[i] C(i, 16..31); fully unrolled loops with constant indices keep them in registers.
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i) c0[i] = _mm512_setzero_ps(), c1[i] = _mm512_setzero_ps();

#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b);       // B(p, 0..15)
    const __m512 b1 = _mm512_load_ps(b + 16);  // B(p, 16..31)
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);  // A(i, p) on all 16 lanes
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
    a += MR;
    b += NR;
  }

  store_c_tile<MR>(c0, c1, alpha, beta, C, ldc);
}

bool Avx512Kernel::cpu_supports() { return __builtin_cpu_supports("avx512f"); }

#else  // not x86-64: never chosen

void Avx512Kernel::microkernel(int64_t, const float*, const float*, float, float, float*, int64_t) {
  BF_FAIL("the avx512 GEMM microkernel is not compiled for this architecture");
}
bool Avx512Kernel::cpu_supports() { return false; }

#endif

}  // namespace bertforge::cpu::detail
