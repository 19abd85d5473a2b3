// BertLayer: one post-LN transformer encoder layer of BERT, Hugging Face's `bert.encoder.layer.<i>`.
//
// For x (B,T,C):
//   a   = LayerNorm(dropout(attention.output.dense(attention.self(x))) + x)     attention.output.LayerNorm
//   f   = output.dense(gelu(intermediate.dense(a)))                             the FFN output
//   r   = dropout(f) + a                                                       FFN output + residual
//   out = output.LayerNorm(r)                                                  the layer output
// Every intermediate above (dense outputs, residual sums, LayerNorm outputs, the GELU input and output) goes
// through a tap point of models/forward_context.h, as do attention.self's.
//
// Folded channel scales (FoldedScales, all undefined by default: the plain layer above). quant/channel_fold.h moves
// a per-input-channel scale s into a Linear's weight and divides the Linear's input by s, so that the int8 input
// has smaller outliers. Where the input's producer cannot absorb 1/s on its own, the layer does a per-channel
// multiply that the fold leaves behind:
//   x * attention_residual       the residual of the attention block, when x (the previous LayerNorm's output)
//                                was divided by s to feed query/key/value: multiplying by s restores x
//   a * ffn_residual             the same for a, divided by s to feed intermediate.dense
//   gelu(...) * gelu_output      output.dense's input: GELU cannot absorb 1/s (not homogeneous), so the 1/s is a
//                                multiply after it, before the `gelu` tap point
// With them the layer computes the unfolded layer's function (up to float rounding). They are not parameters, so
// Module::to leaves them where they are: on another device they are copied to x's device at each use.
//
// Hugging Face's wrappers (BertAttention, BertSelfOutput, BertIntermediate, BertOutput) hold nothing but these
// modules, so they are flattened into dotted names here: "attention.output.dense", "intermediate.dense", ...
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "models/bert_attention.h"
#include "models/bert_config.h"
#include "models/forward_context.h"
#include "models/layers.h"
#include "models/module.h"

namespace bertforge {

class BertLayer : public Module {
 public:
  // `layer` (0-based) names this layer's dropout sites and tap points.
  BertLayer(const BertConfig& config, int64_t layer);

  // x (B,T,C); mask additive f32 (B,1,1,T) or undefined -> (B,T,C).
  Tensor forward(const Tensor& x, const Tensor& mask, const ForwardContext& ctx) const;

  BertSelfAttention attention_self;       // attention.self
  Linear attention_output_dense;          // attention.output.dense       C -> C
  LayerNorm attention_output_layer_norm;  // attention.output.LayerNorm
  Linear intermediate_dense;              // intermediate.dense           C -> intermediate_size
  Linear output_dense;                    // output.dense                 intermediate_size -> C
  LayerNorm output_layer_norm;            // output.LayerNorm

  // Per-channel multiplies left by folding (file comment); F32, undefined: none. Not parameters: quant/ stores them
  // in its checkpoints under its own names.
  struct FoldedScales {
    Tensor attention_residual;  // (C)
    Tensor ffn_residual;        // (C)
    Tensor gelu_output;         // (intermediate_size)
  };
  FoldedScales folded;

 private:
  float hidden_dropout_prob_;
  int64_t layer_;
};

}  // namespace bertforge
