// BertSelfAttention: the attention variants and head dropout (formulas in bert_attention.h).
#include "models/bert_attention.h"

#include <cmath>
#include <utility>

#include "ops/activation.h"
#include "ops/autocast.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"

namespace bertforge {
namespace {

// The init of an attention parameter with `fan_in` inputs per config.attention_init (bert_config.h): `bert` for
// AttentionInit::kBert, else PyTorch's nn.Linear U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
ParamInit projection_init(const BertConfig& config, int64_t fan_in, ParamInit bert) {
  if (config.attention_init == AttentionInit::kBert) return bert;
  return ParamInit::uniform(1.0f / std::sqrt(static_cast<float>(fan_in)));
}

// A query, key or value projection (C -> C).
Linear projection(const BertConfig& config) {
  const int64_t C = config.hidden_size;
  return Linear(C, C, projection_init(config, C, ParamInit::normal(config.initializer_range)),
                projection_init(config, C, ParamInit::zeros()));
}

}  // namespace

BertSelfAttention::BertSelfAttention(const BertConfig& config, int64_t layer)
    : query(projection(config)),
      key(projection(config)),
      value(projection(config)),
      config_(config),
      layer_(layer) {
  register_module("query", query);
  register_module("key", key);
  register_module("value", value);
  if (config.attention == AttentionVariant::kGated) {
    // The gate starts open by pi_init on average: sigmoid(logit(pi_init)) = pi_init for small weights.
    const float pi = config.gate_pi_init;
    const int64_t d = config.head_size();
    gate_weight = register_parameter("gate.weight", {config.num_attention_heads, d},
                                     projection_init(config, d, ParamInit::normal(config.initializer_range)));
    gate_bias = register_parameter("gate.bias", {config.num_attention_heads},
                                   ParamInit::constant(std::log(pi / (1.0f - pi))));
  }
}

Tensor BertSelfAttention::gates(const Tensor& x) const {
  BF_CHECK(config_.attention == AttentionVariant::kGated, "BertSelfAttention::gates: the attention variant is ",
           attention_variant_name(config_.attention));
  const int64_t B = x.size(0), T = x.size(1), H = config_.num_attention_heads, d = config_.head_size();
  // x_h . g_h for every head at once: (B,T,H,d) * (H,d) summed over d.
  const Tensor logits = add_bias(sum(mul(reshape(x, {B, T, H, d}), gate_weight), {-1}), gate_bias);  // (B,T,H)
  return reshape(permute(sigmoid(logits), {0, 2, 1}), {B, H, T, 1});
}

Tensor BertSelfAttention::forward(const Tensor& x, const Tensor& mask, const ForwardContext& ctx) const {
  BF_CHECK(x.dim() == 3 && x.size(2) == config_.hidden_size, "BertSelfAttention: x must be (B, T, ",
           config_.hidden_size, "), got ", x.shape_str());
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  const int64_t H = config_.num_attention_heads, d = config_.head_size();
  // (B,T,C) -> (B,H,T,d)
  auto split_heads = [&](const Tensor& t) { return permute(reshape(t, {B, T, H, d}), {0, 2, 1, 3}); };
  // Under mixed precision the three projections share one 16-bit copy of x (ops/autocast.h).
  const Tensor x_operand = autocast(x);
  const Tensor q = split_heads(ctx.tap(layer_, TapPoint::kQuery, query.forward(x_operand)));
  const Tensor k = split_heads(ctx.tap(layer_, TapPoint::kKey, key.forward(x_operand)));
  const Tensor v = split_heads(ctx.tap(layer_, TapPoint::kValue, value.forward(x_operand)));

  // Hugging Face divides by sqrt(d); multiplying by 1/sqrt(d) differs by at most an ulp, and not at all when
  // d is a power of 4 (BERT's 64).
  const Tensor scores = ctx.tap(layer_, TapPoint::kAttentionScores,
                                scale(matmul(q, k, false, /*trans_b=*/true), 1.0f / std::sqrt(static_cast<float>(d))));
  Tensor probs;  // (B,H,T,T)
  switch (config_.attention) {
    case AttentionVariant::kSoftmax:
    case AttentionVariant::kGated:
      probs = softmax(scores, mask);
      break;
    case AttentionVariant::kClippedSoftmax:
      probs = clipped_softmax(scores, mask, config_.clip_gamma_for(T, ctx.clip_alpha), config_.clip_zeta);
      break;
  }
  probs = ctx.tap(layer_, TapPoint::kAttentionProbs, std::move(probs));
  probs = dropout(probs, config_.attention_probs_dropout_prob, ctx.dropout.key(layer_, DropoutSite::kAttentionProbs),
                  is_training());

  Tensor context = matmul(probs, v);  // (B,H,T,d)
  if (config_.attention == AttentionVariant::kGated) context = mul(context, gates(x));
  if (config_.head_dropout_prob > 0.0f) {
    context = head_dropout(context, config_.head_dropout_prob, ctx.dropout.key(layer_, DropoutSite::kHeads),
                           is_training());
  }
  return ctx.tap(layer_, TapPoint::kContext, reshape(contiguous(permute(context, {0, 2, 1, 3})), {B, T, C}));
}

}  // namespace bertforge
