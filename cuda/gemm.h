// GEMMs on the GPU through cuBLAS: the CUDA kernels gemm_strided_batched(_16) (cuda/gemm.cpp), and the precision
// their FP32 tensors are multiplied in.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bertforge::cuda {

// How cuBLAS multiplies FP32 matrices; accumulation is FP32 in every mode.
enum class GemmPrecision {
  kFp32,  // IEEE FP32 multiplies (CUBLAS_COMPUTE_32F)
  kTf32,  // tensor cores, inputs rounded to TF32 (10-bit mantissa) (CUBLAS_COMPUTE_32F_FAST_TF32)
  kBf16,  // tensor cores, inputs rounded to BF16 (7-bit mantissa) (CUBLAS_COMPUTE_32F_FAST_16BF)
  kFp16,  // tensor cores, inputs rounded to FP16 (10-bit mantissa, 5-bit exponent: values beyond 65504 overflow,
          // below 6e-8 underflow; see train/loss_scaler.h) (CUBLAS_COMPUTE_32F_FAST_16F)
};

// "fp32", "tf32", "bf16" or "fp16".
absl::StatusOr<GemmPrecision> parse_gemm_precision(absl::string_view name);
std::string gemm_precision_name(GemmPrecision precision);

// Applies to every later GEMM on every GPU of this process (default kFp32).
void set_gemm_precision(GemmPrecision precision);
GemmPrecision gemm_precision();

}  // namespace bertforge::cuda
