// ops/cpu/gemm.h — the single CPU entry point for matrix multiplication: FP32, or 16-bit inputs into FP32.
//
// Every matmul in bertforge (linear layers, attention scores, their backward passes) ends up here.
// Two implementations sit behind the same functions, chosen when the library is built:
//   - our own BLIS-style kernel (packing + cache blocking + a register-blocked microkernel), the default;
//   - OpenBLAS's cblas_sgemm, when compiled with BERTFORGE_USE_OPENBLAS (CMake: -DBERTFORGE_BLAS=openblas),
//     kept so that the two can be benchmarked against each other (tests/bench/bench_gemm.cpp).
// The own kernel has one microkernel per instruction set ("path"), every one compiled into every x86-64 build and
// chosen once, at the first call, from what the CPU supports (cpuid):
//   scalar       portable C++, any CPU;
//   avx2         6x16 FP32 tile, AVX2 + FMA (ops/cpu/gemm_avx2.cpp);
//   avx512       12x32 FP32 tile, AVX-512F (ops/cpu/gemm_avx512.cpp);
//   avx512-bf16  12x32 tile of vdpbf16ps, bf16 operands only, FP32 sums (ops/cpu/gemm_bf16_avx512.cpp).
// FP32 and f16 operands (f16 widened to FP32 while packing) take avx512 where the CPU has AVX-512F (measured
// faster than avx2 on AMD Zen 4, see gemm.cpp), else avx2, else scalar; bf16 operands take avx512-bf16 where the CPU
// has AVX512-BF16, else are widened like f16. Every path gives the same bits (ops/cpu/gemm_kernels.h), so the
// choice is one of speed only. The environment variable
// BERTFORGE_GEMM_ISA=scalar|avx2|avx512|avx512-bf16 forces a path (avx512-bf16: for bf16 operands only; FP32 and
// f16 then keep their default), an error if the CPU lacks it.
//
// All matrices are row-major. Transposition is expressed by flags, never by copying: op(X) = X or X^T.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace bertforge::cpu {

// Row-major single-precision GEMM: C = alpha * op(A) @ op(B) + beta * C.
//   op(A) is (M,K): A is stored (M,K) with leading dim lda, or (K,M) when trans_a.
//   op(B) is (K,N): B is stored (K,N) with leading dim ldb, or (N,K) when trans_b.
//   C is (M,N) with leading dim ldc.
// beta == 0 means C is write-only (whatever C held before, NaNs included, is ignored).
// K == 0 or alpha == 0 reduces to C = beta * C.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// `batch` independent products C_i = alpha * op(A_i) @ op(B_i) + beta * C_i, where
// A_i = A + i*stride_a, B_i = B + i*stride_b, C_i = C + i*stride_c (strides in elements).
// Used for multi-head attention: scores (B*H, T, T) = Q (B*H, T, d) @ K^T, and probs @ V.
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                          int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                          int64_t batch);

// The same with A and B of 16-bit floating type input_type (kBF16 or kF16), C in FP32, products and sums in FP32:
// bit for bit the FP32 GEMM of the widened operands, on every path (ops/cpu/gemm_kernels.h; on avx512-bf16 except
// for subnormal bf16 values, which vdpbf16ps reads as zero). Always the own kernel (OpenBLAS builds included).
void gemm_strided_batched_16(DType input_type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
                             int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch);

// ---- Paths (see the top of this file) ----------------------------------------------------------------------------
enum class GemmIsa : uint8_t { kScalar, kAvx2, kAvx512, kAvx512Bf16 };

const char* gemm_isa_name(GemmIsa isa);  // "scalar", "avx2", "avx512", "avx512-bf16"
// Compiled into this build and supported by this CPU (and OS).
bool gemm_isa_available(GemmIsa isa);
// Whether the path takes operands of input_type (kF32, kBF16, kF16): avx512-bf16 takes bf16 only.
bool gemm_isa_accepts(GemmIsa isa, DType input_type);
std::vector<GemmIsa> gemm_available_isas();
// The path the calls above use for operands of input_type (kF32, kBF16 or kF16); BERTFORGE_GEMM_ISA included.
GemmIsa gemm_isa_for(DType input_type);

// gemm_strided_batched(_16) on a named path, for tests and benchmarks that compare the paths; input_type is kF32
// (A, B are float*), kBF16 or kF16. An error when the path is unavailable or does not take input_type.
void gemm_strided_batched_on(GemmIsa isa, DType input_type, bool trans_a, bool trans_b, int64_t M, int64_t N,
                             int64_t K, float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B,
                             int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                             int64_t batch);

// What serves FP32 GEMMs: "own-avx512", "own-avx2", "own-scalar" or "openblas". For benchmark output.
const char* gemm_backend_name();
// One line for benchmark and program headers: the path per operand type, e.g.
// "f32 avx512, bf16 avx512-bf16, f16 avx512 (widened)".
std::string gemm_paths_summary();

}  // namespace bertforge::cpu
