// quant/int8_gemm_avx512.cpp — the AVX-512 VNNI microkernel of the int8 GEMM: an 8 x 32 tile with vpdpbusd.
//
// vpdpbusd multiplies 4 uint8 activations by 4 int8 weights in each 32-bit lane and adds the four products to the
// lane's int32 accumulator, without intermediate saturation: exact, 64 multiply-adds per instruction on a zmm.
// Activations stay uint8 (no offset), so this path needs no row-sum correction beyond the zero point's.
//
// Compiled for every x86-64 build through __attribute__((target(...))) and picked at run time only when
// __builtin_cpu_supports reports avx512vnni (with avx512bw). NOTE: the development machine (AMD EPYC Zen 3,
// AVX2 + FMA only) cannot execute it; there it is compiled but skipped by the tests and the benchmark.
//
// Tile 8 x 32: 16 accumulators (8 rows x 2 zmm of 16 channels) + 2 weight registers + 1 broadcast of 32.
#include <cstdint>

#include "quant/int8_gemm_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace bertforge::quant::detail {
namespace {

constexpr int64_t MR = 8, NR = 32;

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void microkernel_vnni(int64_t kq, const uint8_t* a,
                                                                              const int8_t* b, int32_t* tile) {
  __m512i c[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) c[r][0] = _mm512_setzero_si512(), c[r][1] = _mm512_setzero_si512();
  for (int64_t g = 0; g < kq; ++g) {
    const __m512i w0 = _mm512_loadu_si512(b);       // channels 0..15, 4 k each
    const __m512i w1 = _mm512_loadu_si512(b + 64);  // channels 16..31
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t a4;
      __builtin_memcpy(&a4, a + r * 4, 4);
      const __m512i ar = _mm512_set1_epi32(a4);
      c[r][0] = _mm512_dpbusd_epi32(c[r][0], ar, w0);
      c[r][1] = _mm512_dpbusd_epi32(c[r][1], ar, w1);
    }
    a += MR * 4;
    b += NR * 4;
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_si512(tile + r * NR, c[r][0]);
    _mm512_storeu_si512(tile + r * NR + 16, c[r][1]);
  }
}

bool cpu_has_vnni() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}

// KC = 512: a B panel block (512 x 32 = 16 KiB) and an A panel (8 x 512 = 4 KiB) fit in L1 (32–48 KiB).
constexpr Int8Microkernel kVnni{Int8GemmIsa::kAvx512Vnni, MR, NR, 512, /*signed_a=*/false, /*max_a_bits=*/8,
                                microkernel_vnni,
                                cpu_has_vnni};

}  // namespace

const Int8Microkernel* avx512_vnni_microkernel() { return &kVnni; }

}  // namespace bertforge::quant::detail

#else

namespace bertforge::quant::detail {
const Int8Microkernel* avx512_vnni_microkernel() { return nullptr; }
}  // namespace bertforge::quant::detail

#endif
