// BertLayer: attention block then FFN block, each closed by dropout, residual and LayerNorm (see bert_layer.h).
#include "models/bert_layer.h"

#include "ops/activation.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"

namespace bertforge {

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
  Tensor attended = attention_output_dense.forward(attention_self.forward(x, mask, ctx));
  attended = dropout(attended, hidden_dropout_prob_, ctx.dropout.key(layer_, DropoutSite::kAttentionOutput),
                     training);
  const Tensor a = attention_output_layer_norm.forward(add(attended, x));

  const Tensor ffn_output = output_dense.forward(gelu(intermediate_dense.forward(a)));
  ctx.observe(layer_, kProbeFfnOutput, ffn_output);
  const Tensor residual = add(
      dropout(ffn_output, hidden_dropout_prob_, ctx.dropout.key(layer_, DropoutSite::kFfnOutput), training), a);
  ctx.observe(layer_, kProbeFfnOutputPlusResidual, residual);
  const Tensor out = output_layer_norm.forward(residual);
  ctx.observe(layer_, kProbeLayerOutput, out);
  return out;
}

}  // namespace bertforge
