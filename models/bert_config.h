// BertConfig: the hyperparameters of a BERT model, with Hugging Face config.json compatibility.
//
// The standard fields carry Hugging Face's names and defaults (bert-base-uncased), so a config.json written by
// `transformers` reads here and ours reads there. bertforge's own fields choose the attention variant of
// "Quantizable Transformers" (Bondarenko et al. 2023) and head dropout; in JSON they are prefixed
// "bertforge_" (transformers keeps unknown fields as plain attributes):
//
//   "bertforge_attention":         "softmax" | "clipped_softmax" | "gated"
//   "bertforge_clip_gamma":        clipped softmax gamma (used when no alpha is given)
//   "bertforge_clip_alpha":        clipped softmax alpha: gamma = -alpha / T, T the sequence length of the batch
//   "bertforge_clip_zeta":         clipped softmax zeta
//   "bertforge_gate_pi_init":      gated attention: the initial gate probability, gate bias = logit(pi_init)
//   "bertforge_head_dropout_prob": attention-head dropout (DropHead) probability
//   "bertforge_attention_init":    "reference": the attention projections start as PyTorch's nn.Linear
//                                  (written only then; absent means "bert", the normal init of every Linear)
//
// docs/design.md, "Numerics", gives the formulas.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/json.h"

namespace bertforge {

enum class AttentionVariant { kSoftmax, kClippedSoftmax, kGated };

// "softmax", "clipped_softmax", "gated": the JSON spelling.
const char* attention_variant_name(AttentionVariant variant);
absl::StatusOr<AttentionVariant> attention_variant_from_name(absl::string_view name);

// How the attention projections (query, key, value, and the gated variant's gate weight) are initialised:
//   kBert       N(0, initializer_range) weights, zero biases, as every other Linear (Hugging Face's _init_weights)
//   kReference  weights and biases U(-1/sqrt(in), 1/sqrt(in)), in = the fan-in: PyTorch's default nn.Linear init,
//               which the clipped-softmax paper's reference code (Qualcomm outlier-free-transformers, run_mlm.py)
//               keeps by building fresh attention modules; the gate bias stays logit(gate_pi_init)
// The attention output dense, the FFN, the embeddings and the MLM head keep the BERT init either way.
enum class AttentionInit { kBert, kReference };

// "bert", "reference": the JSON and flag spelling.
const char* attention_init_name(AttentionInit init);
absl::StatusOr<AttentionInit> attention_init_from_name(absl::string_view name);

struct BertConfig {
  // ---- Hugging Face fields (defaults: bert-base-uncased) ----
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  int64_t pad_token_id = 0;  // its word-embedding row starts at zero (as HF's padding_idx)
  float hidden_dropout_prob = 0.1f;
  float attention_probs_dropout_prob = 0.1f;
  float layer_norm_eps = 1e-12f;
  float initializer_range = 0.02f;  // std of the normal initialisation of Linear and Embedding weights

  // ---- bertforge fields ----
  AttentionVariant attention = AttentionVariant::kSoftmax;
  // Clipped softmax clip((zeta - gamma) softmax(x) + gamma, 0, 1). With clip_alpha set, gamma = -alpha / T
  // for each batch's sequence length T and clip_gamma is unused. Defaults: the papers' BERT setting.
  float clip_gamma = -0.025f;
  std::optional<float> clip_alpha;
  float clip_zeta = 1.0f;
  // Gated attention: each head's gate bias starts at logit(gate_pi_init), so the gates start open by pi_init.
  float gate_pi_init = 0.5f;
  // DropHead: per sample and head, drop the head's context with this probability during training.
  float head_dropout_prob = 0.0f;
  AttentionInit attention_init = AttentionInit::kBert;

  // Presets, the standard sizes with the default everything else:
  //   base  12 layers, hidden 768, 12 heads, FFN 3072 (110M parameters)
  //   mini   4 layers, hidden 256,  4 heads, FFN 1024
  //   tiny   2 layers, hidden 128,  2 heads, FFN 512
  static BertConfig base();
  static BertConfig mini();
  static BertConfig tiny();
  // The preset called `name` ("base", "mini", "tiny").
  static absl::StatusOr<BertConfig> preset(absl::string_view name);

  int64_t head_size() const { return hidden_size / num_attention_heads; }
  // The clipped softmax gamma for sequences of length seq_len: -alpha / seq_len with alpha = alpha_override if
  // given (a training schedule's alpha, models/forward_context.h), else clip_alpha; clip_gamma without either.
  float clip_gamma_for(int64_t seq_len, std::optional<float> alpha_override = std::nullopt) const;

  // OK, or InvalidArgument naming every field that is out of range (sizes <= 0, hidden_size not divisible by
  // num_attention_heads, probabilities outside [0, 1), eps <= 0, zeta <= gamma, pi_init outside (0, 1), head
  // dropout with more than 64 heads, ...).
  absl::Status validate() const;

  // config.json: the Hugging Face fields (plus "model_type": "bert", "architectures", "hidden_act": "gelu")
  // and the bertforge fields.
  Json to_json() const;
  // Reads a config.json. Missing fields keep their defaults; unknown Hugging Face fields are ignored, but an
  // unknown "bertforge_" field, a field of the wrong type, a hidden_act other than "gelu" or a
  // position_embedding_type other than "absolute" is an error. The result is validated.
  static absl::StatusOr<BertConfig> from_json(const Json& json);

  // File versions of to_json / from_json (the file is written atomically).
  absl::Status save(const std::string& path) const;
  static absl::StatusOr<BertConfig> load(const std::string& path);
};

}  // namespace bertforge
