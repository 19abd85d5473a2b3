// Differentiable cross-entropy loss over class logits, with an ignore index
// (the MLM loss: only masked positions carry a target).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace bertforge {

// The default ignore_index: targets equal to it carry no loss (PyTorch's and Hugging Face's -100).
inline constexpr int64_t kIgnoreIndex = -100;

// logits (N, V), targets int64 (N) -> 0-d tensor: the mean over rows whose
// target != ignore_index of logsumexp(logits[r]) - logits[r, targets[r]].
// A target outside [0, V) that is not ignore_index is an error naming it.
// When every row is ignored the loss is 0 (not NaN) and the gradient is zero.
// Only the logits receive a gradient.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = kIgnoreIndex);

}  // namespace bertforge
