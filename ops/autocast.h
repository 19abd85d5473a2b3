// Mixed precision by autocasting, as torch.autocast does for matrix products.
//
// Inside an AutocastGuard(kBF16) (or kF16), matmul and linear round their FP32 operands to the 16-bit type,
// multiply them with FP32 products and sums (tensor cores on a GPU) and return FP32. For backward they keep the
// 16-bit copies of activation operands, half the bytes of FP32 ones (a weight is rounded again instead: its FP32
// master lives on anyway), and the output gradient is rounded the same way before its two products. GELU keeps
// its input for backward in 16 bits too (as torch.autocast's GELU, whose input is a 16-bit Linear output). So
// the GEMMs read 16-bit activations and 16-bit copies of the weights, while
//   - the weights themselves stay FP32 (the master weights the optimizer updates), as do gradients and the
//     optimizer state;
//   - every other op (bias, GELU, LayerNorm, softmax, dropout, the loss) computes in FP32 on FP32 tensors.
// bf16 keeps FP32's range with an 8-bit significand; f16 has an 11-bit significand but overflows past 65504 and
// loses gradients below 6e-8, hence loss scaling (train/loss_scaler.h) with f16.
//
// The guard is per thread and nests; backward needs no guard (each product remembers its operands' type).
#pragma once

#include "core/tensor.h"

namespace bertforge {

class AutocastGuard {
 public:
  // dtype: kBF16 or kF16 to autocast, kF32 to turn autocasting off inside an outer guard.
  explicit AutocastGuard(DType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType previous_;
};

// The 16-bit type matrix products round to on this thread, or kF32 outside any guard.
DType autocast_dtype();

// x (any shape) rounded to autocast_dtype(), once, for an input that several products read (the query, key and
// value projections of one hidden state): each product would otherwise keep its own 16-bit copy. Differentiable:
// the FP32 gradient passes through unchanged (the rounding counts as the identity, as in every mixed-precision
// scheme). x itself when autocasting is off or x is not FP32.
Tensor autocast(const Tensor& x);

// What an element-wise op keeps of its FP32 input x for backward: x rounded to autocast_dtype() under a guard
// (widened again by widened_for_backward before the backward kernel), x itself otherwise.
Tensor kept_for_backward(const Tensor& x);
Tensor widened_for_backward(const Tensor& kept);

}  // namespace bertforge
