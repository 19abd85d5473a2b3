// BertEmbeddings and BertForMaskedLM: the embeddings, the encoder stack and the MLM head (see bert.h).
#include "models/bert.h"

#include <limits>
#include <string>

#include "models/encoder_linears.h"
#include "ops/activation.h"
#include "ops/cross_entropy.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/shape.h"

namespace bertforge {

namespace {

// `config`, after checking that it is valid: the first member initialiser of BertForMaskedLM uses it, so an
// invalid config fails before any size is used.
const BertConfig& validated(const BertConfig& config) {
  const absl::Status status = config.validate();
  BF_CHECK(status.ok(), "BertForMaskedLM: ", status.message());
  return config;
}

void check_ids(const char* what, const Tensor& ids, const Shape& shape) {
  BF_CHECK(ids.dtype() == DType::kI64 && ids.shape() == shape, "BertForMaskedLM: ", what, " must be int64 ",
           shape_to_string(shape), ", got ", ids.str());
}

}  // namespace

Tensor additive_attention_mask(const Tensor& attention_mask) {
  BF_CHECK(attention_mask.dim() == 2, "attention_mask must be (B, T), got ", attention_mask.shape_str());
  const int64_t B = attention_mask.size(0), T = attention_mask.size(1);
  std::vector<float> additive = attention_mask.to(Device::cpu()).to_float_vector();
  for (int64_t i = 0; i < B * T; ++i) {
    BF_CHECK(additive[i] == 0.0f || additive[i] == 1.0f, "attention_mask must hold 0 and 1, got ", additive[i],
             " at position ", i);
    additive[i] = additive[i] == 1.0f ? 0.0f : std::numeric_limits<float>::lowest();
  }
  return Tensor::from_vector(additive, {B, 1, 1, T}).to(attention_mask.device());
}

// ---- BertEmbeddings ------------------------------------------------------------------------------------------

BertEmbeddings::BertEmbeddings(const BertConfig& config)
    : word_embeddings(config.vocab_size, config.hidden_size, config.initializer_range, config.pad_token_id),
      position_embeddings(config.max_position_embeddings, config.hidden_size, config.initializer_range),
      token_type_embeddings(config.type_vocab_size, config.hidden_size, config.initializer_range),
      layer_norm(config.hidden_size, config.layer_norm_eps),
      hidden_dropout_prob_(config.hidden_dropout_prob) {
  register_module("word_embeddings", word_embeddings);
  register_module("position_embeddings", position_embeddings);
  register_module("token_type_embeddings", token_type_embeddings);
  register_module("LayerNorm", layer_norm);
}

Tensor BertEmbeddings::forward(const Tensor& input_ids, const Tensor& token_type_ids,
                               const ForwardContext& ctx) const {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int64_t max_positions = position_embeddings.weight.size(0);
  BF_CHECK(T <= max_positions, "BertForMaskedLM: sequence length ", T, " exceeds max_position_embeddings ",
           max_positions);
  std::vector<int64_t> positions(T);
  for (int64_t t = 0; t < T; ++t) positions[t] = t;
  const Tensor position_ids = Tensor::from_vector(positions, {T}).to(input_ids.device());
  const Tensor types = token_type_ids.defined() ? token_type_ids
                                                : Tensor::zeros({B, T}, DType::kI64, input_ids.device());
  // Summed in Hugging Face's order: (word + token type) + position; the (T,C) positions broadcast over B.
  const Tensor sum = ctx.tap(kEmbeddingsLayer, TapPoint::kEmbeddingSum,
                             add(add(word_embeddings.forward(input_ids), token_type_embeddings.forward(types)),
                                 position_embeddings.forward(position_ids)));
  const Tensor normalized = ctx.tap(kEmbeddingsLayer, TapPoint::kEmbeddingLayerNorm, layer_norm.forward(sum));
  return dropout(normalized, hidden_dropout_prob_, ctx.dropout.key(kEmbeddingsLayer, DropoutSite::kEmbeddings),
                 is_training());
}

// ---- BertForMaskedLM -----------------------------------------------------------------------------------------

BertForMaskedLM::BertForMaskedLM(const BertConfig& config, uint64_t init_seed, BertHead head)
    : embeddings(validated(config)),
      transform_dense(config.hidden_size, config.hidden_size, config.initializer_range),
      transform_layer_norm(config.hidden_size, config.layer_norm_eps),
      config_(config),
      head_(head) {
  register_module("bert.embeddings", embeddings);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers.push_back(std::make_unique<BertLayer>(config, i));
    register_module(encoder_layer_name(i), *layers.back());
  }
  if (has_mlm_head()) {
    decoder_bias = register_parameter("cls.predictions.bias", {config.vocab_size}, ParamInit::zeros());
    register_module("cls.predictions.transform.dense", transform_dense);
    register_module("cls.predictions.transform.LayerNorm", transform_layer_norm);
    ignore_on_load("cls.predictions.decoder.weight");  // tied to the word embeddings
    ignore_on_load("cls.predictions.decoder.bias");    // tied to cls.predictions.bias
  }
  ignore_on_load("bert.embeddings.position_ids");  // a buffer: always 0..max_position_embeddings-1
  init_parameters(init_seed);
}

Tensor BertForMaskedLM::encode(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                               const DropoutContext& dropout) const {
  BF_CHECK(input_ids.dim() == 2, "BertForMaskedLM: input_ids must be (B, T), got ", input_ids.str());
  const Shape shape = input_ids.shape();
  check_ids("input_ids", input_ids, shape);
  if (token_type_ids.defined()) check_ids("token_type_ids", token_type_ids, shape);
  Tensor mask;
  if (attention_mask.defined()) {
    BF_CHECK(attention_mask.shape() == shape, "BertForMaskedLM: attention_mask must be ", shape_to_string(shape),
             ", got ", attention_mask.str());
    mask = additive_attention_mask(attention_mask);
  }
  const ForwardContext ctx{dropout, &hook_, &probe_, clip_alpha_};
  Tensor h = embeddings.forward(input_ids, token_type_ids, ctx);
  for (const std::unique_ptr<BertLayer>& layer : layers) h = layer->forward(h, mask, ctx);
  return h;
}

Tensor BertForMaskedLM::mlm_logits(const Tensor& hidden) const {
  const Tensor transformed = transform_layer_norm.forward(gelu(transform_dense.forward(hidden)));
  return linear(transformed, embeddings.word_embeddings.weight, decoder_bias);  // the tied decoder
}

BertOutput BertForMaskedLM::forward(const Tensor& input_ids, const Tensor& token_type_ids,
                                    const Tensor& attention_mask, const Tensor& labels,
                                    const DropoutContext& dropout) const {
  BF_CHECK(has_mlm_head(), "BertForMaskedLM: forward needs the MLM head; this encoder-only model has only encode()");
  BertOutput out;
  out.logits = mlm_logits(encode(input_ids, token_type_ids, attention_mask, dropout));  // (B,T,V)
  if (labels.defined()) {
    check_ids("labels", labels, input_ids.shape());
    const int64_t rows = input_ids.numel();
    out.loss = cross_entropy(reshape(out.logits, {rows, config_.vocab_size}), labels.reshape({rows}));
  }
  return out;
}

Tensor BertForMaskedLM::mlm_loss(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                                 const Tensor& labels, const DropoutContext& dropout) const {
  BF_CHECK(has_mlm_head(), "BertForMaskedLM: mlm_loss needs the MLM head; this encoder-only model has only encode()");
  BF_CHECK(labels.defined(), "BertForMaskedLM: mlm_loss needs labels");
  check_ids("labels", labels, input_ids.shape());
  // The labelled rows of the flattened (B*T) positions, and their targets.
  const Tensor host_labels = labels.to(Device::cpu()).contiguous();
  const int64_t* label = host_labels.data<int64_t>();
  std::vector<int64_t> rows, targets;
  for (int64_t i = 0; i < host_labels.numel(); ++i) {
    if (label[i] != kIgnoreIndex) rows.push_back(i), targets.push_back(label[i]);
  }
  if (rows.empty()) rows.push_back(0), targets.push_back(kIgnoreIndex);  // a zero loss with zero gradients
  const Device device = input_ids.device();
  const int64_t n = static_cast<int64_t>(rows.size());
  const Tensor h = encode(input_ids, token_type_ids, attention_mask, dropout);  // (B,T,C)
  // Gathering rows of h is an embedding lookup with h as the table; its gradient scatters back into h.
  const Tensor labelled = embedding(Tensor::from_vector(rows, {n}).to(device),
                                    reshape(h, {input_ids.numel(), config_.hidden_size}));  // (n,C)
  return cross_entropy(mlm_logits(labelled), Tensor::from_vector(targets, {n}).to(device));
}

}  // namespace bertforge
