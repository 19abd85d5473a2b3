// Differentiable softmax over the last dim with an optional additive mask, and the clipped softmax of
// "Quantizable Transformers" (Bondarenko et al. 2023), which lets attention heads output exact zeros.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace bertforge {

// softmax(x + mask) over the last dim. x (..., T).
//
// mask (optional) is additive f32 (0 to keep, a large negative value such as -1e4 or -inf to mask) and
// broadcasts to x with this structure: after padding its shape on the left with 1s to x.dim(), its last
// dim is T, and its leading dims equal x's leading dims up to some point and are 1 after it. For attention
// scores x (B, H, T, T) that admits (B, 1, 1, T) (the BERT padding mask), (B, H, 1, T), (B, H, T, T),
// (1, 1, 1, T) and (T); it rejects e.g. (1, 1, T, T) when B > 1 (expand such a mask to x's shape first).
// The mask gets no gradient.
//
// A row whose every entry is -inf (fully masked) gets probability 0 everywhere (PyTorch would give NaN),
// and a zero gradient.
Tensor softmax(const Tensor& x, const Tensor& mask = Tensor());

// clip((zeta - gamma) * softmax(x + mask) + gamma, 0, 1), mask as for softmax; requires zeta > gamma.
// The papers use gamma < 0 <= 1 < zeta, e.g. gamma = -0.025, zeta = 1 for BERT. gamma = 0, zeta = 1 is
// exactly softmax. The gradient is zero where the clip is active (the pre-clip value strictly outside
// [0, 1]); elsewhere it is (zeta - gamma) times the softmax gradient.
Tensor clipped_softmax(const Tensor& x, const Tensor& mask, float gamma, float zeta);

// gamma = -alpha / seq_len: the papers' way to set gamma for a sequence length T (alpha = 3.2 at T = 128).
float clipped_softmax_gamma_from_alpha(float alpha, int64_t seq_len);

}  // namespace bertforge
