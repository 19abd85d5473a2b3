// ops/cpu/gemm.h — the single CPU entry point for matrix multiplication: FP32, or 16-bit inputs into FP32.
//
// Every matmul in bertforge (linear layers, attention scores, their backward passes) ends up here.
// Two implementations sit behind the same functions, chosen when the library is built:
//   - our own BLIS-style kernel (packing + cache blocking + an AVX2/FMA register-blocked microkernel), the default;
//   - OpenBLAS's cblas_sgemm, when compiled with BERTFORGE_USE_OPENBLAS (CMake: -DBERTFORGE_BLAS=openblas),
//     kept so that the two can be benchmarked against each other (tests/bench/bench_gemm.cpp).
//
// All matrices are row-major. Transposition is expressed by flags, never by copying: op(X) = X or X^T.
#pragma once

#include <cstdint>

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

// The same with A and B of 16-bit floating type input_type (kBF16 or kF16), C in FP32: each element is widened
// to FP32 exactly, products and sums are FP32. Always the own kernel (OpenBLAS builds included).
void gemm_strided_batched_16(DType input_type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
                             int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch);

// Which implementation this build uses: "own-avx2", "own-scalar" or "openblas". For benchmark output.
const char* gemm_backend_name();

}  // namespace bertforge::cpu
