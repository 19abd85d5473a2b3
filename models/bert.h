// BertForMaskedLM: BERT with its masked-language-modelling head, parameter for parameter as Hugging Face's
// `BertForMaskedLM` (post-LN, LayerNorm eps from the config, exact erf GELU), so checkpoints load both ways.
//
//   bert.embeddings.{word_embeddings, position_embeddings, token_type_embeddings}.weight, .LayerNorm.{weight,bias}
//   bert.encoder.layer.<i>.*                                   BertLayer (models/bert_layer.h)
//   cls.predictions.bias                                       the decoder bias (V)
//   cls.predictions.transform.{dense, LayerNorm}.{weight,bias}
//   decoder weight: tied to bert.embeddings.word_embeddings.weight (no tensor of its own)
//
// Forward, for ids (B,T):
//   e      = dropout(LayerNorm(word[ids] + token_type[token_type_ids] + position[0..T)))
//   h      = layer_{L-1}(... layer_0(e))                   attention masked by attention_mask
//   logits = LayerNorm(gelu(dense(h))) word^T + bias       (B,T,V)
//   loss   = mean over positions with label != -100 of cross_entropy(logits, label)
//
// Tap points (models/forward_context.h): the embedding sum and its LayerNorm, then each layer's; set_hook
// sees (and may replace) them all, set_probe observes the outlier metrics' subset. The MLM head has none.
//
// The padding mask is additive: (1 - attention_mask) * lowest float (-3.4e38), as Hugging Face's
// (1 - mask) * torch.finfo(float32).min, so masked keys get probability exactly 0.
//
// Initialisation (init_seed): as Hugging Face's _init_weights, Linear and Embedding weights normal(0,
// initializer_range), biases 0, LayerNorm weight 1, the [PAD] row (pad_token_id) of the word embeddings 0;
// the gated variant's gate bias logit(gate_pi_init); with attention_init "reference" the attention projections
// instead start as PyTorch's nn.Linear (models/bert_config.h). Each parameter has its own Philox stream (module.h).
//
// Checkpoints: save_safetensors / load_safetensors (models/module.h) with these names. Hugging Face files may
// also hold the tied duplicates cls.predictions.decoder.{weight,bias} and the buffer bert.embeddings.position_ids:
// loading ignores them. A pretraining checkpoint's pooler and NSP head (bert.pooler.*, cls.seq_relationship.*)
// are reported as unexpected by a non-strict load.
//
// Encoder only: built with BertHead::kEncoderOnly, the model has no MLM head (no cls.* parameters), as Hugging
// Face's BertModel (e.g. sentence-transformers' all-MiniLM-L6-v2): encode() works, forward() is an error. One class
// serves both so that every encoder consumer (evaluation, sentence embeddings, quant/) takes a BertForMaskedLM:
// despite the class name, only has_mlm_head() says whether the MLM head is there.
// models/hf_checkpoint.h loads either kind of Hugging Face file, choosing the head from its tensor names.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "models/bert_config.h"
#include "models/bert_layer.h"
#include "models/forward_context.h"
#include "models/layers.h"
#include "models/module.h"

namespace bertforge {

// `bert.embeddings`: ids (B,T) -> (B,T,C).
class BertEmbeddings : public Module {
 public:
  explicit BertEmbeddings(const BertConfig& config);
  // ids, token_type_ids int64 (B,T) (token_type_ids undefined: all 0) -> (B,T,C).
  Tensor forward(const Tensor& input_ids, const Tensor& token_type_ids, const ForwardContext& ctx) const;

  Embedding word_embeddings, position_embeddings, token_type_embeddings;
  LayerNorm layer_norm;  // "LayerNorm"

 private:
  float hidden_dropout_prob_;
};

// What forward returns.
struct BertOutput {
  Tensor logits;  // (B,T,V)
  Tensor loss;    // 0-d: the mean MLM cross-entropy; undefined when no labels were given
};

// Whether a BertForMaskedLM has its MLM head (cls.predictions.*) or is the encoder alone (Hugging Face's BertModel).
enum class BertHead { kMaskedLM, kEncoderOnly };

// BERT with the MLM head, or, built with BertHead::kEncoderOnly, the encoder alone (file comment).
class BertForMaskedLM : public Module {
 public:
  // Builds and initialises the model; the config must be valid (BertConfig::validate).
  explicit BertForMaskedLM(const BertConfig& config, uint64_t init_seed = 0, BertHead head = BertHead::kMaskedLM);

  const BertConfig& config() const { return config_; }
  bool has_mlm_head() const { return head_ == BertHead::kMaskedLM; }

  // input_ids int64 (B,T), T <= max_position_embeddings;
  // token_type_ids int64 (B,T), or undefined for all 0;
  // attention_mask (B,T) of 0 (padding) and 1, any dtype, or undefined for all 1;
  // labels int64 (B,T), -100 where no prediction is scored, or undefined for no loss.
  // Dropout is active in training mode, with masks keyed by `dropout` (models/forward_context.h).
  // Needs the MLM head (has_mlm_head()).
  BertOutput forward(const Tensor& input_ids, const Tensor& token_type_ids = Tensor(),
                     const Tensor& attention_mask = Tensor(), const Tensor& labels = Tensor(),
                     const DropoutContext& dropout = DropoutContext()) const;

  // The MLM loss alone, equal to forward(...).loss, with the head run only at the labelled positions (label !=
  // -100; 15% of them in pretraining). The head's decoder is a (rows, V) GEMM that dominates small models, so
  // training and evaluation use this. Arguments as for forward; labels is required. With no labelled position
  // the loss is 0 and the gradients are zero, as forward's. Needs the MLM head.
  Tensor mlm_loss(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                  const Tensor& labels, const DropoutContext& dropout = DropoutContext()) const;

  // The encoder's output (B,T,C), the input of the MLM head; arguments as for forward.
  Tensor encode(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                const DropoutContext& dropout = DropoutContext()) const;

  // Passes every tap point of the embeddings and encoder (models/forward_context.h) through `hook` in later
  // forward passes (the model continues with what it returns); an empty function removes it. The MLM head has
  // no tap points.
  void set_hook(ActivationHook hook) { hook_ = std::move(hook); }
  const ActivationHook& hook() const { return hook_; }

  // Observes the probe points of every layer (models/forward_context.h) in later forward passes, after the
  // hook; an empty function turns probing off. Independent of set_hook: both may be set.
  void set_probe(ProbeFn probe) { probe_ = std::move(probe); }

  // The clipped softmax alpha of later forward passes (ForwardContext::clip_alpha), replacing config().clip_alpha
  // while set; nullopt returns to the config's. For training schedules (the trainer's alpha warm-up).
  void set_clip_alpha(std::optional<float> alpha) { clip_alpha_ = alpha; }

  BertEmbeddings embeddings;                       // bert.embeddings
  std::vector<std::unique_ptr<BertLayer>> layers;  // bert.encoder.layer.<i>
  // The MLM head. Without one (BertHead::kEncoderOnly) decoder_bias is undefined and the transform modules are
  // not registered: they are neither parameters nor in checkpoints.
  Tensor decoder_bias;                             // cls.predictions.bias (V)
  Linear transform_dense;                          // cls.predictions.transform.dense
  LayerNorm transform_layer_norm;                  // cls.predictions.transform.LayerNorm

 private:
  BertConfig config_;
  BertHead head_;
  ActivationHook hook_;
  ProbeFn probe_;
  std::optional<float> clip_alpha_;

  // The MLM head: hidden states (..., C) -> logits (..., V).
  Tensor mlm_logits(const Tensor& hidden) const;
};

// attention_mask (B,T) of 0 and 1 (any dtype) -> the additive mask (B,1,1,T): 0 where 1, lowest float where 0.
// Any other value is an error.
Tensor additive_attention_mask(const Tensor& attention_mask);

}  // namespace bertforge
