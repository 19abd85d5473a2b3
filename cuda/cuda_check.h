// Error-check macros for CUDA runtime and cuBLAS calls: a failing call throws
// bertforge::Error naming the call, the error string, and file:line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/check.h"

#define BF_CUDA_CHECK(call)                                                                     \
  do {                                                                                          \
    cudaError_t bf_err_ = (call);                                                               \
    if (bf_err_ != cudaSuccess) {                                                               \
      ::bertforge::ThrowError(__FILE__, __LINE__,                                               \
                              ::absl::StrCat(#call, " failed: ", cudaGetErrorString(bf_err_))); \
    }                                                                                           \
  } while (0)

#define BF_CUBLAS_CHECK(call)                                                                     \
  do {                                                                                            \
    cublasStatus_t bf_status_ = (call);                                                           \
    if (bf_status_ != CUBLAS_STATUS_SUCCESS) {                                                    \
      ::bertforge::ThrowError(__FILE__, __LINE__,                                                 \
                              ::absl::StrCat(#call, " failed: ", cublasGetStatusString(bf_status_))); \
    }                                                                                             \
  } while (0)
