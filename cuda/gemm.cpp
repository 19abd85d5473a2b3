// cuBLAS behind the CUDA kernels gemm_strided_batched and gemm_strided_batched_16 (see cuda/gemm.h), the twins of the
// CPU GEMMs of ops/cpu/gemm.h.
//
// bertforge's matrices are row-major and cuBLAS's column-major. A row-major M x N matrix
// is, read column-major, its N x M transpose, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T: cuBLAS gets B before A, N before M, and the same transpose flags.
#include "cuda/gemm.h"

#include <atomic>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cuda/cuda_check.h"
#include "cuda/stream.h"
#include "ops/kernels.h"

namespace bertforge::cuda {
namespace {

std::atomic<GemmPrecision> current_precision{GemmPrecision::kFp32};

// One cuBLAS handle per GPU, created on first use, working on the compute stream.
cublasHandle_t handle_for_current_device() {
  static std::mutex mutex;
  static std::vector<cublasHandle_t> handles;
  int device = 0;
  BF_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  if (static_cast<int>(handles.size()) <= device) handles.resize(device + 1, nullptr);
  if (handles[device] == nullptr) {
    BF_CUBLAS_CHECK(cublasCreate(&handles[device]));
    BF_CUBLAS_CHECK(cublasSetStream(handles[device], compute_stream()));
  }
  return handles[device];
}

cublasComputeType_t compute_type(GemmPrecision precision) {
  switch (precision) {
    case GemmPrecision::kTf32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case GemmPrecision::kBf16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case GemmPrecision::kFp16: return CUBLAS_COMPUTE_32F_FAST_16F;
    case GemmPrecision::kFp32: break;
  }
  return CUBLAS_COMPUTE_32F;
}

// C (batch, M, N) = alpha op(A) op(B) + beta C, row-major (as ops/cpu/gemm.h).
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta,
                          float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  BF_CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && batch <= INT32_MAX,
           "GEMM dimensions over 2^31 are not supported by cuBLAS's 32-bit interface");
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  BF_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle_for_current_device(), op_b, op_a, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K),
      &alpha, B, CUDA_R_32F, static_cast<int>(ldb), stride_b, A, CUDA_R_32F, static_cast<int>(lda), stride_a, &beta,
      C, CUDA_R_32F, static_cast<int>(ldc), stride_c, static_cast<int>(batch), compute_type(current_precision.load()),
      CUBLAS_GEMM_DEFAULT));
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, gemm_strided_batched);

// The same with A and B 16-bit (bf16 or f16) and C FP32: cuBLAS runs them on tensor cores with FP32 accumulation
// whatever set_gemm_precision says (that setting is for FP32 inputs).
void gemm_strided_batched_16(DType input_type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
                             int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  BF_CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && batch <= INT32_MAX,
           "GEMM dimensions over 2^31 are not supported by cuBLAS's 32-bit interface");
  BF_CHECK(input_type == DType::kBF16 || input_type == DType::kF16,
           "gemm_strided_batched_16: inputs must be bf16 or f16, got ", dtype_name(input_type));
  const cudaDataType_t type = input_type == DType::kBF16 ? CUDA_R_16BF : CUDA_R_16F;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  BF_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle_for_current_device(), op_b, op_a, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K),
      &alpha, B, type, static_cast<int>(ldb), stride_b, A, type, static_cast<int>(lda), stride_a, &beta, C,
      CUDA_R_32F, static_cast<int>(ldc), stride_c, static_cast<int>(batch), CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, gemm_strided_batched_16);

}  // namespace

absl::StatusOr<GemmPrecision> parse_gemm_precision(absl::string_view name) {
  if (name == "fp32") return GemmPrecision::kFp32;
  if (name == "tf32") return GemmPrecision::kTf32;
  if (name == "bf16") return GemmPrecision::kBf16;
  if (name == "fp16") return GemmPrecision::kFp16;
  return absl::InvalidArgumentError(absl::StrCat("unknown GEMM precision '", name, "': fp32, tf32, bf16 or fp16"));
}

std::string gemm_precision_name(GemmPrecision precision) {
  switch (precision) {
    case GemmPrecision::kTf32: return "tf32";
    case GemmPrecision::kBf16: return "bf16";
    case GemmPrecision::kFp16: return "fp16";
    case GemmPrecision::kFp32: break;
  }
  return "fp32";
}

void set_gemm_precision(GemmPrecision precision) { current_precision.store(precision); }
GemmPrecision gemm_precision() { return current_precision.load(); }

}  // namespace bertforge::cuda
