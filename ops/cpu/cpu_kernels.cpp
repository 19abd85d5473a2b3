// Fills the CPU kernel table (see ops/kernels.h).
#include "ops/cpu/cpu_kernels.h"

#include "ops/cpu/gemm.h"

namespace bertforge::cpu {

void register_cpu_kernels(KernelTable& table) {
  table.gemm_strided_batched = &gemm_strided_batched;
  table.gemm_strided_batched_16 = &gemm_strided_batched_16;
  table.binary = &binary;
  table.scale = &scale;
  table.add_bias = &add_bias;
  table.scale_channels = &scale_channels;
  table.sum_rows = &sum_rows;
  table.gelu_forward = &gelu_forward;
  table.gelu_backward = &gelu_backward;
  table.tanh_forward = &tanh_forward;
  table.tanh_backward = &tanh_backward;
  table.sigmoid_forward = &sigmoid_forward;
  table.sigmoid_backward = &sigmoid_backward;
  table.layernorm_forward = &layernorm_forward;
  table.layernorm_backward = &layernorm_backward;
  table.softmax_forward = &softmax_forward;
  table.softmax_backward = &softmax_backward;
  table.clipped_softmax_forward = &clipped_softmax_forward;
  table.clipped_softmax_backward = &clipped_softmax_backward;
  table.dropout_forward = &dropout_forward;
  table.dropout_backward = &dropout_backward;
  table.head_dropout_forward = &head_dropout_forward;
  table.head_dropout_backward = &head_dropout_backward;
  table.embedding_forward = &embedding_forward;
  table.embedding_backward = &embedding_backward;
  table.cross_entropy_forward = &cross_entropy_forward;
  table.cross_entropy_backward = &cross_entropy_backward;
  table.adamw_update = &adamw_update;
  table.fake_quantize = &fake_quantize;
  table.sum_of_squares_chunks = &sum_of_squares_chunks;
  table.adamw_update_many = &adamw_update_many;
}

}  // namespace bertforge::cpu
