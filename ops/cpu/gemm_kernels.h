// ops/cpu/gemm_kernels.h — internal to the CPU GEMM: the microkernels, one per path, as traits structs that
// parameterise the one loop nest of gemm.cpp (gemm_serial<Kernel, T>).
//
// A kernel's traits are its register tile (MR x NR), its cache blocking (KC, MC, NC: see gemm.cpp for the loops),
// the element type of its packed panels and its microkernel:
//   microkernel(steps, a, b, alpha, beta, C, ldc):  C (MR x NR, leading dim ldc) = alpha * a @ b + beta * C
// where a is one packed A micro-panel and b one packed B micro-panel, `steps` k-steps long; beta == 0 never reads C.
// Panels, k-major, zero-padded to whole MR / NR tiles:
//   Panel = float (kPack 1):     a[p * MR + i] = op(A)(i, p),   b[p * NR + j] = op(B)(p, j)        (steps = kc)
//   Panel = uint32_t (kPack 2):  a[s * MR + i] = op(A)(i, 2s) << 16 | op(A)(i, 2s+1) as bf16 bits,
//                                b[s * NR + j] = op(B)(2s, j) << 16 | op(B)(2s+1, j)               (steps = ceil(kc/2);
//                                an odd kc's last pair has a zero low half)
// FP32 panels are packed by gemm_pack.h (widening bf16 / f16 on the way); bf16 pair panels by the kernel's own
// pack_a / pack_b (gemm_bf16_avx512.cpp).
//
// Same bits on every path: each kernel sums an output element's products in k order, one rounding per product
// (FMA; vdpbf16ps adds a pair's high half first, hence the even k there), starting from zero, and stores
// alpha * sum (+ beta * C as one FMA); all use KC = 256, so the K blocks' partial sums are the same too (gemm.cpp
// static_asserts it). Register tile, MC, NC and threads change which tile an element falls in, never its sum. So
// FP32 results do not depend on the CPU's instruction set, and the bf16 GEMM (avx512-bf16 or widened) equals the
// FP32 GEMM of the widened operands, bit for bit (vdpbf16ps flushes subnormals: results differ only there).
//
// The kernels of other instruction sets are compiled with __attribute__((target(...))) in every x86-64 build (never
// through -march: GCC 12 builds everything with -mno-avx512f, see CMakeLists.txt) and run only where
// cpu_supports() says so. On other architectures their cpu_supports() is false.
#pragma once

#include <cstdint>

#include "core/half.h"
#include "ops/cpu/gemm.h"

namespace bertforge::cpu::detail {

// Portable C++, the same tile as AVX2 (gemm.cpp).
struct ScalarKernel {
  static constexpr GemmIsa kIsa = GemmIsa::kScalar;
  using Panel = float;
  static constexpr int64_t kPack = 1;
  static constexpr int64_t MR = 6, NR = 16, KC = 256, MC = 144, NC = 4080;
  static void microkernel(int64_t steps, const Panel* a, const Panel* b, float alpha, float beta, float* C,
                          int64_t ldc);
  static bool cpu_supports() { return true; }
};

// AVX2 + FMA, 6 x 16 (gemm_avx2.cpp).
struct Avx2Kernel {
  static constexpr GemmIsa kIsa = GemmIsa::kAvx2;
  using Panel = float;
  static constexpr int64_t kPack = 1;
  static constexpr int64_t MR = 6, NR = 16, KC = 256, MC = 144, NC = 4080;
  static void microkernel(int64_t steps, const Panel* a, const Panel* b, float alpha, float beta, float* C,
                          int64_t ldc);
  static bool cpu_supports();
};

// AVX-512F, 12 x 32 (gemm_avx512.cpp; the blocking is explained there).
struct Avx512Kernel {
  static constexpr GemmIsa kIsa = GemmIsa::kAvx512;
  using Panel = float;
  static constexpr int64_t kPack = 1;
  static constexpr int64_t MR = 12, NR = 32, KC = 256, MC = 288, NC = 4096;
  static void microkernel(int64_t steps, const Panel* a, const Panel* b, float alpha, float beta, float* C,
                          int64_t ldc);
  static bool cpu_supports();
};

// AVX512-BF16 (vdpbf16ps), 12 x 32 over bf16 pairs (gemm_bf16_avx512.cpp; the blocking is explained there).
struct Avx512Bf16Kernel {
  static constexpr GemmIsa kIsa = GemmIsa::kAvx512Bf16;
  using Panel = uint32_t;
  static constexpr int64_t kPack = 2;
  static constexpr int64_t MR = 12, NR = 32, KC = 256, MC = 288, NC = 4096;  // KC in k (128 pairs), even
  static void microkernel(int64_t steps, const Panel* a, const Panel* b, float alpha, float beta, float* C,
                          int64_t ldc);
  // Packs `lines` lines of length kc into ceil(lines / R) pair panels (R = MR for A, NR for B), panel q at
  // dst + q * R * ceil(kc/2). Element p of line l is src[l * line_stride + p * elem_stride] (as gemm_pack.h).
  static void pack_a(const bf16* src, int64_t line_stride, int64_t elem_stride, int64_t lines, int64_t kc,
                     Panel* dst);
  static void pack_b(const bf16* src, int64_t line_stride, int64_t elem_stride, int64_t lines, int64_t kc,
                     Panel* dst);
  static bool cpu_supports();
};

}  // namespace bertforge::cpu::detail
