// BertSelfAttention: Hugging Face's `attention.self` (query/key/value projections and the attention itself)
// with the three attention variants of "Quantizable Transformers" (Bondarenko et al. 2023) and head dropout.
//
// For x (B,T,C), H heads of size d = C / H, and the additive padding mask M (B,1,1,T):
//   Q, K, V  = x Wq^T + bq, ...                     (B,T,C) split into heads -> (B,H,T,d)
//   S        = Q K^T / sqrt(d)                       (B,H,T,T)
//   P        = softmax(S + M)                        kSoftmax
//            = clip((zeta - gamma) softmax(S + M) + gamma, 0, 1)   kClippedSoftmax (gamma = -alpha/T if alpha;
//                                                    ForwardContext::clip_alpha, when set, replaces the config's)
//   P        = dropout(P)                            attention_probs_dropout_prob
//   Z        = P V                                   (B,H,T,d), the per-head context
//   Z_h     *= sigmoid(x_h . g_h + b_h)              kGated only: x_h (B,T,d) is head h's slice of the input x,
//                                                    g (H,d) = gate.weight, b (H) = gate.bias = logit(pi_init)
//   Z        = head_dropout(Z)                       head_dropout_prob: per (sample, head), on the per-head
//                                                    context (after the gate), before the heads are merged
//   out      = Z merged back to (B,T,C)
// Tap points (models/forward_context.h): Q, K, V before the head split, S, P before dropout, out.
// attention.output (dense, dropout, residual, LayerNorm) lives in BertLayer.
// Q, K, V and the gate weight are initialised per config.attention_init (models/bert_config.h).
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "models/bert_config.h"
#include "models/forward_context.h"
#include "models/layers.h"
#include "models/module.h"

namespace bertforge {

class BertSelfAttention : public Module {
 public:
  // `layer` (0-based) names this layer's dropout sites and tap points.
  BertSelfAttention(const BertConfig& config, int64_t layer);

  // x (B,T,C); mask additive f32 (B,1,1,T) or undefined -> context (B,T,C).
  Tensor forward(const Tensor& x, const Tensor& mask, const ForwardContext& ctx) const;

  // x (B,T,C) -> the gates (B,H,T,1), sigmoid(x_h . g_h + b_h). kGated only.
  Tensor gates(const Tensor& x) const;

  Linear query, key, value;
  Tensor gate_weight, gate_bias;  // kGated only: (H, d) and (H), named gate.weight and gate.bias

 private:
  BertConfig config_;
  int64_t layer_;
};

}  // namespace bertforge
