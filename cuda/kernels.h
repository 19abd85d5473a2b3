// Registration of the CUDA kernel families into the CUDA kernel table.
#pragma once

#include "ops/kernels.h"

namespace bertforge::cuda {

void register_elementwise_kernels(KernelTable& table);  // cuda/elementwise.cu

}  // namespace bertforge::cuda
