// Registers the element-wise CUDA kernels (cuda/elementwise.cuh) in the CUDA kernel table.
#include "cuda/elementwise.cuh"
#include "cuda/kernels.h"

namespace bertforge::cuda {

void register_elementwise_kernels(KernelTable& table) {
  table.binary = &binary;
  table.scale = &scale;
  table.add_bias = &add_bias;
  table.sum_rows = &sum_rows;
}

}  // namespace bertforge::cuda
