// Registration of the CUDA kernel families into the CUDA kernel table; each is defined in
// the .cu (or .cpp) file named beside it.
#pragma once

#include "ops/kernels.h"

namespace bertforge::cuda {

void register_gemm(KernelTable& table);                 // cuda/gemm.cpp (cuBLAS)
void register_elementwise_kernels(KernelTable& table);  // cuda/elementwise.cu

}  // namespace bertforge::cuda
