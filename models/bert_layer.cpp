// BertLayer: attention block then FFN block, each closed by dropout, residual and LayerNorm (see bert_layer.h).
#include "models/bert_layer.h"

#include "ops/activation.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"

namespace bertforge {
namespace {

// x * scale (per channel of the last dim) when a scale is set, else x itself.
Tensor scaled(const Tensor& x, const Tensor& scale) {
  if (!scale.defined()) return x;
  return scale_channels(x, scale.device() == x.device() ? scale : scale.to(x.device()));
}

}  // namespace

BertLayer::BertLayer(const BertConfig& config, int64_t layer)
    : attention_self(config, layer),
      attention_output_dense(config.hidden_size, config.hidden_size, config.initializer_range),
      attention_output_layer_norm(config.hidden_size, config.layer_norm_eps),
      intermediate_dense(config.hidden_size, config.intermediate_size, config.initializer_range),
      output_dense(config.intermediate_size, config.hidden_size, config.initializer_range),
      output_layer_norm(config.hidden_size, config.layer_norm_eps),
      hidden_dropout_prob_(config.hidden_dropout_prob),
      layer_(layer) {
  register_module("attention.self", attention_self);
  register_module("attention.output.dense", attention_output_dense);
  register_module("attention.output.LayerNorm", attention_output_layer_norm);
  register_module("intermediate.dense", intermediate_dense);
  register_module("output.dense", output_dense);
  register_module("output.LayerNorm", output_layer_norm);
}

Tensor BertLayer::forward(const Tensor& x, const Tensor& mask, const ForwardContext& ctx) const {
  const bool training = is_training();
  Tensor attended = ctx.tap(layer_, TapPoint::kAttentionOutput,
                            attention_output_dense.forward(attention_self.forward(x, mask, ctx)));
  attended = dropout(attended, hidden_dropout_prob_, ctx.dropout.key(layer_, DropoutSite::kAttentionOutput),
                     training);
  const Tensor attention_sum = ctx.tap(layer_, TapPoint::kAttentionOutputPlusResidual,
                                       add(attended, scaled(x, folded.attention_residual)));
  const Tensor a =
      ctx.tap(layer_, TapPoint::kAttentionLayerNorm, attention_output_layer_norm.forward(attention_sum));

  const Tensor intermediate = ctx.tap(layer_, TapPoint::kIntermediate, intermediate_dense.forward(a));
  const Tensor activated = ctx.tap(layer_, TapPoint::kGelu, scaled(gelu(intermediate), folded.gelu_output));
  const Tensor ffn_output = ctx.tap(layer_, TapPoint::kFfnOutput, output_dense.forward(activated));
  const Tensor residual = ctx.tap(
      layer_, TapPoint::kFfnOutputPlusResidual,
      add(dropout(ffn_output, hidden_dropout_prob_, ctx.dropout.key(layer_, DropoutSite::kFfnOutput), training),
          scaled(a, folded.ffn_residual)));
  return ctx.tap(layer_, TapPoint::kLayerOutput, output_layer_norm.forward(residual));
}

}  // namespace bertforge
