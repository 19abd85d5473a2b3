// The kernel table: every compute kernel an op may call, one table per device.
//
// Each entry defines a kernel's signature (ops/cpu/cpu_kernels.h and cuda/*.cuh repeat it). Kernels take raw
// pointers to contiguous f32 data (ids are int64; the 16-bit GEMM reads bf16/f16) plus sizes, in the style of
// llm.c, so a CUDA kernel has exactly the signature of its CPU reference.
// The ops (ops/*.cpp) check shapes, dtypes and devices, then call
//     kernels_for(x.device()).gelu_forward(y, x, n);
// The CPU table is filled in ops/cpu/cpu_kernels.cpp; the CUDA backend fills
// the CUDA table when it is built. A missing entry fails with the kernel's name.
//
// To add an op: README.md, "Adding an op" (the CPU kernel, the op, the CUDA kernel
// and their tests).
#pragma once

#include <cstdint>

#include "core/check.h"
#include "core/device.h"
#include "core/dtype.h"

namespace bertforge {

enum class BinaryOp : uint8_t { kAdd, kSub, kMul };

struct KernelTable {
  // ---- GEMM (ops/cpu/gemm.h): C = alpha op(A) op(B) + beta C, row-major, batched by strides.
  void (*gemm_strided_batched)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                               const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                               int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                               int64_t batch) = nullptr;

  // The same with A and B of 16-bit floating type input_type (kBF16 or kF16) and C in FP32: products and sums
  // in FP32 (mixed precision, ops/autocast.h).
  void (*gemm_strided_batched_16)(DType input_type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                  float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B,
                                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                                  int64_t batch) = nullptr;

  // ---- Element-wise (ops/cpu/elementwise.cpp). out may alias an input.
  // out[i] = a[i] op b[i], i < n
  void (*binary)(BinaryOp op, float* out, const float* a, const float* b, int64_t n) = nullptr;
  // out[i] = s * x[i]
  void (*scale)(float* out, const float* x, float s, int64_t n) = nullptr;
  // out (rows, cols) = x (rows, cols) + bias (cols)
  void (*add_bias)(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) = nullptr;
  // out (rows, cols) = x * s (cols): a per-channel scale
  void (*scale_channels)(float* out, const float* x, const float* s, int64_t rows, int64_t cols) = nullptr;
  // out (cols) = sum over rows of x (rows, cols): the bias gradient
  void (*sum_rows)(float* out, const float* x, int64_t rows, int64_t cols) = nullptr;

  // ---- Activations (ops/cpu/activation.cpp)
  void (*gelu_forward)(float* out, const float* x, int64_t n) = nullptr;                   // exact erf GELU
  void (*gelu_backward)(float* dx, const float* x, const float* dout, int64_t n) = nullptr;  // dx = dout * gelu'(x)
  void (*tanh_forward)(float* out, const float* x, int64_t n) = nullptr;
  void (*tanh_backward)(float* dx, const float* out, const float* dout, int64_t n) = nullptr;  // uses tanh output
  void (*sigmoid_forward)(float* out, const float* x, int64_t n) = nullptr;  // 1 / (1 + exp(-x))
  void (*sigmoid_backward)(float* dx, const float* out, const float* dout, int64_t n) = nullptr;  // out (1 - out)

  // ---- LayerNorm over the last dim (ops/cpu/layernorm.cpp)
  // x, out (rows, cols); weight, bias (cols); mean, rstd (rows) saved for backward.
  void (*layernorm_forward)(float* out, float* mean, float* rstd, const float* x, const float* weight,
                            const float* bias, int64_t rows, int64_t cols, float eps) = nullptr;
  // dx (rows, cols) written; dweight, dbias (cols) written (not accumulated).
  void (*layernorm_backward)(float* dx, float* dweight, float* dbias, const float* dout, const float* x,
                             const float* weight, const float* mean, const float* rstd, int64_t rows,
                             int64_t cols) = nullptr;

  // ---- Softmax over the last dim with an optional additive mask (ops/cpu/softmax.cpp)
  // logits, probs (rows, cols). mask (rows / rows_per_mask, cols) or nullptr: row r uses
  // mask row r / rows_per_mask (attention: scores (B,H,T,T), mask (B,T), rows_per_mask = H*T).
  void (*softmax_forward)(float* probs, const float* logits, const float* mask, int64_t rows, int64_t cols,
                          int64_t rows_per_mask) = nullptr;
  // dlogits = probs * (dprobs - sum(dprobs * probs))
  void (*softmax_backward)(float* dlogits, const float* dprobs, const float* probs, int64_t rows,
                           int64_t cols) = nullptr;
  // out = clip((zeta - gamma) * softmax(logits + mask) + gamma, 0, 1); probs keeps the unclipped softmax.
  void (*clipped_softmax_forward)(float* out, float* probs, const float* logits, const float* mask, int64_t rows,
                                  int64_t cols, int64_t rows_per_mask, float gamma, float zeta) = nullptr;
  // Gradient is zero where the clip is active, softmax Jacobian * (zeta - gamma) inside.
  void (*clipped_softmax_backward)(float* dlogits, const float* dout, const float* probs, int64_t rows,
                                   int64_t cols, float gamma, float zeta) = nullptr;

  // ---- Dropout from a Philox stream (ops/cpu/dropout.cpp); the mask is regenerated in backward.
  // Element i is kept iff philox_uniform(seed, offset, i) >= p; kept elements are scaled by 1/(1-p).
  void (*dropout_forward)(float* out, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) = nullptr;
  void (*dropout_backward)(float* dx, const float* dout, int64_t n, float p, uint64_t seed,
                           uint64_t offset) = nullptr;
  // Attention-head dropout: x, out (batch, heads, inner); one keep/drop per (sample, head),
  // kept heads scaled by heads / kept; a sample with every head dropped is redrawn.
  void (*head_dropout_forward)(float* out, const float* x, int64_t batch, int64_t heads, int64_t inner, float p,
                               uint64_t seed, uint64_t offset) = nullptr;
  void (*head_dropout_backward)(float* dx, const float* dout, int64_t batch, int64_t heads, int64_t inner,
                                float p, uint64_t seed, uint64_t offset) = nullptr;

  // ---- Embedding lookup (ops/cpu/embedding.cpp). ids (n) are in [0, vocab) (checked by the op).
  // out (n, dim) = table (vocab, dim) rows at ids
  void (*embedding_forward)(float* out, const int64_t* ids, const float* table, int64_t n, int64_t dim) = nullptr;
  // dtable (vocab, dim) += scatter of dout (n, dim) at ids; the op zeroes dtable first
  void (*embedding_backward)(float* dtable, const int64_t* ids, const float* dout, int64_t n,
                             int64_t dim) = nullptr;

  // ---- Cross-entropy over logits with ignore-index (ops/cpu/cross_entropy.cpp)
  // logits (rows, classes); targets (rows). Writes loss (rows) = logsumexp - logit[target] and
  // lse (rows) = logsumexp; rows whose target == ignore_index get loss 0 and lse 0.
  void (*cross_entropy_forward)(float* loss, float* lse, const float* logits, const int64_t* targets,
                                int64_t rows, int64_t classes, int64_t ignore_index) = nullptr;
  // dlogits = dloss_per_row * (softmax(logits) - onehot(target)); zero rows for ignored targets.
  void (*cross_entropy_backward)(float* dlogits, const float* logits, const float* lse, const int64_t* targets,
                                 int64_t rows, int64_t classes, int64_t ignore_index,
                                 float dloss_per_row) = nullptr;

  // ---- AdamW (ops/cpu/adamw.cpp): one decoupled-weight-decay step, in place; step counts from 1.
  void (*adamw_update)(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                       float beta2, float eps, float weight_decay, int64_t step) = nullptr;

  // ---- Fake quantization (ops/cpu/fake_quantize.cpp), asymmetric, as quant/activation_quant.h defines it:
  // out[i] = (clamp(round_half_even(x[i] / scale) + zero_point, 0, q_max) - zero_point) * scale; a NaN stays NaN.
  // zero_point and q_max are integers held in floats. out may alias x.
  void (*fake_quantize)(float* out, const float* x, int64_t n, float scale, float zero_point,
                        float q_max) = nullptr;

  // ---- Integer Linear layers of quantized inference: GPU only (the CPU runs quant/int8_gemm.h's prepacked
  // kernels, which these match). q (n) uint8 = clamp(round_half_even(x / scale) + zero_point, 0, q_max).
  void (*quantize_u8)(uint8_t* q, const float* x, int64_t n, float scale, float zero_point, float q_max) = nullptr;
  // Dynamic per-row quantization, as quant/int8_gemm.h quantize_activations_per_row: for each row m of x (M,K),
  // (scales[m], zero_points[m]) = ActivationQuantParams::from_range({min(0, min_k x), max(0, max_k x)}, bits) and
  // q[m,:] (M,K) its codes as quantize_u8 gives them; bits in [2, 8]. A NaN is left out of the range (code 0). A row
  // holding an infinity cannot raise an error on a GPU: it gets scale NaN and zero point 0, so its outputs are NaN.
  void (*quantize_u8_per_row)(uint8_t* q, float* scales, int32_t* zero_points, const float* x, int64_t M, int64_t K,
                              int bits) = nullptr;
  // y (M,N) = s_a[m] * w_scales[n] * (sum_k a[m][k] w[n][k] - z_a[m] * w_row_sums[n]) + bias[n], the integer sum
  // exact; a (M,K) uint8 and w (N,K) int8 in [-127, 127] row-major, w_row_sums (N) = sum_k w[n][k], w_scales (N,
  // or 1: one scale for every n), bias (N) or nullptr. (s_a[m], z_a[m]) = (a_scales[m], a_zero_points[m]) (M) when
  // these are given (per row), else (a_scale, a_zero_point) for every m.
  void (*int8_linear)(float* y, const uint8_t* a, const int8_t* w, const int32_t* w_row_sums,
                      const float* w_scales, int64_t num_w_scales, const float* bias, int64_t M, int64_t N,
                      int64_t K, float a_scale, int32_t a_zero_point, const float* a_scales,
                      const int32_t* a_zero_points) = nullptr;

  // ---- Multi-tensor (ops/cpu/multi_tensor.cpp): one call over `count` tensors (sizes[i] elements each), one
  // launch per kMultiTensorGroup tensors on a GPU, instead of one or more per tensor. Each tensor is cut into
  // chunks of kMultiTensorChunk elements (its last chunk shorter): multi_tensor_chunks() counts them.
  // partials (chunks): the sum of x^2 over each chunk, tensor by tensor, chunk by chunk.
  void (*sum_of_squares_chunks)(float* partials, const float* const* tensors, const int64_t* sizes,
                                int64_t count) = nullptr;
  // adamw_update on every tensor i with weight decay weight_decays[i] and gradient grads[i] * grad_scale (the
  // product rounded to float first, as scaling the gradient and then updating would).
  void (*adamw_update_many)(float* const* params, const float* const* grads, float* const* m, float* const* v,
                            const int64_t* sizes, const float* weight_decays, int64_t count, float grad_scale,
                            float lr, float beta1, float beta2, float eps, int64_t step) = nullptr;
};

inline constexpr int64_t kMultiTensorChunk = 65536;  // elements per chunk: a GPU block's share
inline constexpr int kMultiTensorGroup = 32;          // tensors per GPU launch (their table is a kernel argument)

// The chunks of tensors of these sizes: sum over i of ceil(sizes[i] / kMultiTensorChunk).
inline int64_t multi_tensor_chunks(const int64_t* sizes, int64_t count) {
  int64_t chunks = 0;
  for (int64_t i = 0; i < count; ++i) chunks += (sizes[i] + kMultiTensorChunk - 1) / kMultiTensorChunk;
  return chunks;
}

// The table of `device`'s backend (throws if the backend was not built).
const KernelTable& kernels_for(Device device);
// For backends registering their kernels; it also makes autograd accumulate gradients on that device with the
// table's `binary` add.
KernelTable& mutable_kernel_table(DeviceType type);

// Throws "<kernel> has no <device> kernel" when a table entry is missing;
// returns the entry otherwise. Usage: BF_KERNEL(x.device(), gelu_forward)(y, x, n).
#define BF_KERNEL(device, name) \
  (::bertforge::require_kernel(::bertforge::kernels_for(device).name, #name, device))

template <typename Fn>
Fn require_kernel(Fn fn, const char* name, Device device) {
  BF_CHECK(fn != nullptr, "kernel ", name, " is not implemented for ", device.str());
  return fn;
}
}  // namespace bertforge
