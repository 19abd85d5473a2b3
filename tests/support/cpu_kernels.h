// Declarations of the CPU kernels that tests and benchmarks call directly, outside the files that define them
// (ops/<family>.cpp: each kernel is declared nowhere else, see ops/kernels.h). A declaration whose parameter
// types differ from the definition's declares another function, which then fails to link: these cannot drift.
// The GEMMs are declared in ops/cpu/gemm.h.
#pragma once

#include <cstdint>

namespace bertforge::cpu {

void gelu_forward(float* out, const float* x, int64_t n);
void gelu_backward(float* dx, const float* x, const float* dout, int64_t n);
void add_bias(float* out, const float* x, const float* bias, int64_t rows, int64_t cols);
void sum_rows(float* out, const float* x, int64_t rows, int64_t cols);
void dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset);
void head_dropout_forward(float* out, const float* x, int64_t batch, int64_t heads, int64_t inner, float p,
                          uint64_t seed, uint64_t offset);
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* weight, const float* bias,
                       int64_t rows, int64_t cols, float eps);
void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout, const float* x, const float* weight,
                        const float* mean, const float* rstd, int64_t rows, int64_t cols);
void softmax_forward(float* probs, const float* logits, const float* mask, int64_t rows, int64_t cols,
                     int64_t rows_per_mask);
void softmax_backward(float* dlogits, const float* dprobs, const float* probs, int64_t rows, int64_t cols);
void clipped_softmax_forward(float* out, float* probs, const float* logits, const float* mask, int64_t rows,
                             int64_t cols, int64_t rows_per_mask, float gamma, float zeta);
void cross_entropy_forward(float* loss, float* lse, const float* logits, const int64_t* targets, int64_t rows,
                           int64_t classes, int64_t ignore_index);
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int64_t* targets, int64_t rows,
                            int64_t classes, int64_t ignore_index, float dloss_per_row);
void embedding_forward(float* out, const int64_t* ids, const float* table, int64_t n, int64_t dim);
void embedding_backward(float* dtable, const int64_t* ids, const float* dout, int64_t n, int64_t dim);
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int64_t step);
void adamw_update_many(float* const* params, const float* const* grads, float* const* m, float* const* v,
                       const int64_t* sizes, const float* weight_decays, int64_t count, float grad_scale, float lr,
                       float beta1, float beta2, float eps, int64_t step);
void sum_of_squares_chunks(float* partials, const float* const* tensors, const int64_t* sizes, int64_t count);

}  // namespace bertforge::cpu
