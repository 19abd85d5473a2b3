// Registration of the CUDA kernel families into the CUDA kernel table; each is defined in
// the kernel source named beside it (compiled by the .cu of the same name), or in gemm.cpp.
#pragma once

#include "ops/kernels.h"

namespace bertforge::cuda {

void register_gemm(KernelTable& table);                    // cuda/gemm.cpp (cuBLAS)
void register_elementwise_kernels(KernelTable& table);     // cuda/elementwise.cuh
void register_activation_kernels(KernelTable& table);      // cuda/activation.cuh
void register_layernorm_kernels(KernelTable& table);       // cuda/layernorm.cuh
void register_softmax_kernels(KernelTable& table);         // cuda/softmax.cuh
void register_dropout_kernels(KernelTable& table);         // cuda/dropout.cuh
void register_embedding_kernels(KernelTable& table);       // cuda/embedding.cuh
void register_cross_entropy_kernels(KernelTable& table);   // cuda/cross_entropy.cuh
void register_adamw_kernels(KernelTable& table);           // cuda/adamw.cuh
void register_fake_quantize_kernels(KernelTable& table);   // cuda/fake_quantize.cuh
void register_int8_linear_kernels(KernelTable& table);     // cuda/int8_linear.cuh

// Every family above: the whole CUDA kernel table.
inline void register_all_kernels(KernelTable& table) {
  register_gemm(table);
  register_elementwise_kernels(table);
  register_activation_kernels(table);
  register_layernorm_kernels(table);
  register_softmax_kernels(table);
  register_dropout_kernels(table);
  register_embedding_kernels(table);
  register_cross_entropy_kernels(table);
  register_adamw_kernels(table);
  register_fake_quantize_kernels(table);
  register_int8_linear_kernels(table);
}

}  // namespace bertforge::cuda
