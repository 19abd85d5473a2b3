// BertConfig: presets, validation, and config.json reading and writing (see bert_config.h).
#include "models/bert_config.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "core/file_io.h"
#include "ops/head_dropout_mask.h"
#include "ops/softmax.h"

namespace bertforge {

namespace {

// The JSON fields that map one-to-one onto a struct member, in the order to_json writes them (Hugging Face's,
// then bertforge's).
struct IntField {
  const char* name;
  int64_t BertConfig::*member;
};
struct FloatField {
  const char* name;
  float BertConfig::*member;
};

constexpr IntField kIntFields[] = {
    {"vocab_size", &BertConfig::vocab_size},
    {"hidden_size", &BertConfig::hidden_size},
    {"num_hidden_layers", &BertConfig::num_hidden_layers},
    {"num_attention_heads", &BertConfig::num_attention_heads},
    {"intermediate_size", &BertConfig::intermediate_size},
    {"max_position_embeddings", &BertConfig::max_position_embeddings},
    {"type_vocab_size", &BertConfig::type_vocab_size},
    {"pad_token_id", &BertConfig::pad_token_id},
};

constexpr FloatField kFloatFields[] = {
    {"hidden_dropout_prob", &BertConfig::hidden_dropout_prob},
    {"attention_probs_dropout_prob", &BertConfig::attention_probs_dropout_prob},
    {"layer_norm_eps", &BertConfig::layer_norm_eps},
    {"initializer_range", &BertConfig::initializer_range},
    {"bertforge_clip_gamma", &BertConfig::clip_gamma},
    {"bertforge_clip_zeta", &BertConfig::clip_zeta},
    {"bertforge_gate_pi_init", &BertConfig::gate_pi_init},
    {"bertforge_head_dropout_prob", &BertConfig::head_dropout_prob},
};

constexpr const char* kAttentionField = "bertforge_attention";
constexpr const char* kClipAlphaField = "bertforge_clip_alpha";
constexpr const char* kAttentionInitField = "bertforge_attention_init";

// A float as the double with the fewest decimal digits that reads back to the same float, so 0.1f is written
// as 0.1 rather than 0.10000000149011612.
double shortest_double(float x) {
  if (!std::isfinite(x)) return x;
  char buffer[32];
  for (int digits = 6; digits < 9; ++digits) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", digits, static_cast<double>(x));
    if (std::strtof(buffer, nullptr) == x) return std::strtod(buffer, nullptr);
  }
  std::snprintf(buffer, sizeof(buffer), "%.9g", static_cast<double>(x));
  return std::strtod(buffer, nullptr);
}

}  // namespace

const char* attention_variant_name(AttentionVariant variant) {
  switch (variant) {
    case AttentionVariant::kSoftmax: return "softmax";
    case AttentionVariant::kClippedSoftmax: return "clipped_softmax";
    case AttentionVariant::kGated: return "gated";
  }
  BF_FAIL("attention_variant_name: invalid variant ", static_cast<int>(variant));
}

absl::StatusOr<AttentionVariant> attention_variant_from_name(absl::string_view name) {
  for (AttentionVariant v : {AttentionVariant::kSoftmax, AttentionVariant::kClippedSoftmax, AttentionVariant::kGated}) {
    if (name == attention_variant_name(v)) return v;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown attention variant \"", name, "\"; expected softmax, clipped_softmax or gated"));
}

const char* attention_init_name(AttentionInit init) {
  switch (init) {
    case AttentionInit::kBert: return "bert";
    case AttentionInit::kReference: return "reference";
  }
  BF_FAIL("attention_init_name: invalid init ", static_cast<int>(init));
}

absl::StatusOr<AttentionInit> attention_init_from_name(absl::string_view name) {
  for (AttentionInit init : {AttentionInit::kBert, AttentionInit::kReference}) {
    if (name == attention_init_name(init)) return init;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown attention init \"", name, "\"; expected bert or reference"));
}

BertConfig BertConfig::base() { return BertConfig(); }

BertConfig BertConfig::mini() {
  BertConfig c;
  c.num_hidden_layers = 4;
  c.hidden_size = 256;
  c.num_attention_heads = 4;
  c.intermediate_size = 1024;
  return c;
}

BertConfig BertConfig::tiny() {
  BertConfig c;
  c.num_hidden_layers = 2;
  c.hidden_size = 128;
  c.num_attention_heads = 2;
  c.intermediate_size = 512;
  return c;
}

absl::StatusOr<BertConfig> BertConfig::preset(absl::string_view name) {
  if (name == "base") return base();
  if (name == "mini") return mini();
  if (name == "tiny") return tiny();
  return absl::InvalidArgumentError(absl::StrCat("unknown BERT preset \"", name, "\"; expected base, mini or tiny"));
}

float BertConfig::clip_gamma_for(int64_t seq_len, std::optional<float> alpha_override) const {
  const std::optional<float> alpha = alpha_override.has_value() ? alpha_override : clip_alpha;
  return alpha.has_value() ? clipped_softmax_gamma_from_alpha(*alpha, seq_len) : clip_gamma;
}

absl::Status BertConfig::validate() const {
  std::vector<std::string> problems;
  for (const IntField& f : kIntFields) {
    const int64_t v = this->*f.member;
    const bool is_id = f.member == &BertConfig::pad_token_id;  // an index, so 0 is fine; the rest are sizes
    if (is_id ? v < 0 : v <= 0) {
      problems.push_back(absl::StrCat(f.name, " must be ", is_id ? ">= 0" : "> 0", ", got ", v));
    }
  }
  if (num_attention_heads > 0 && hidden_size % num_attention_heads != 0) {
    problems.push_back(absl::StrCat("hidden_size ", hidden_size, " is not a multiple of num_attention_heads ",
                                    num_attention_heads));
  }
  if (pad_token_id >= vocab_size) {
    problems.push_back(absl::StrCat("pad_token_id ", pad_token_id, " is outside the vocabulary of ", vocab_size));
  }
  auto check_probability = [&](const char* name, float p) {
    if (!(p >= 0.0f && p < 1.0f)) problems.push_back(absl::StrCat(name, " must be in [0, 1), got ", p));
  };
  check_probability("hidden_dropout_prob", hidden_dropout_prob);
  check_probability("attention_probs_dropout_prob", attention_probs_dropout_prob);
  check_probability("bertforge_head_dropout_prob", head_dropout_prob);
  if (head_dropout_prob > 0.0f && num_attention_heads > kHeadDropoutMaxHeads) {
    problems.push_back(absl::StrCat("head dropout supports at most ", kHeadDropoutMaxHeads, " heads, got ",
                                    num_attention_heads));
  }
  if (!(layer_norm_eps > 0.0f)) problems.push_back(absl::StrCat("layer_norm_eps must be > 0, got ", layer_norm_eps));
  if (!(initializer_range >= 0.0f && std::isfinite(initializer_range))) {
    problems.push_back(absl::StrCat("initializer_range must be finite and >= 0, got ", initializer_range));
  }
  if (!(std::isfinite(clip_gamma) && std::isfinite(clip_zeta))) {
    problems.push_back(absl::StrCat("bertforge_clip_gamma and bertforge_clip_zeta must be finite, got ", clip_gamma,
                                    " and ", clip_zeta));
  }
  if (clip_alpha.has_value()) {
    // gamma = -alpha / T lies in [-alpha, 0] for every T >= 1, so zeta > 0 keeps zeta > gamma.
    if (!(*clip_alpha >= 0.0f && std::isfinite(*clip_alpha))) {
      problems.push_back(absl::StrCat("bertforge_clip_alpha must be finite and >= 0, got ", *clip_alpha));
    }
    if (!(clip_zeta > 0.0f)) {
      problems.push_back(absl::StrCat("bertforge_clip_zeta must be > 0 (above gamma = -alpha / T), got ", clip_zeta));
    }
  } else if (!(clip_zeta > clip_gamma)) {
    problems.push_back(absl::StrCat("bertforge_clip_zeta (", clip_zeta, ") must be greater than bertforge_clip_gamma (",
                                    clip_gamma, ")"));
  }
  if (!(gate_pi_init > 0.0f && gate_pi_init < 1.0f)) {
    problems.push_back(absl::StrCat("bertforge_gate_pi_init must be in (0, 1), got ", gate_pi_init));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("invalid BertConfig: ", absl::StrJoin(problems, "; ")));
}

Json BertConfig::to_json() const {
  Json json = Json::object();
  json.set("architectures", Json(Json::Array{Json("BertForMaskedLM")}));
  json.set("model_type", "bert");
  json.set("hidden_act", "gelu");
  json.set("position_embedding_type", "absolute");
  for (const IntField& f : kIntFields) json.set(f.name, this->*f.member);
  // Hugging Face's float fields, then bertforge's, led by the attention variant.
  for (const FloatField& f : kFloatFields) {
    if (!absl::StartsWith(f.name, "bertforge_")) json.set(f.name, shortest_double(this->*f.member));
  }
  json.set(kAttentionField, attention_variant_name(attention));
  for (const FloatField& f : kFloatFields) {
    if (absl::StartsWith(f.name, "bertforge_")) json.set(f.name, shortest_double(this->*f.member));
  }
  if (clip_alpha.has_value()) json.set(kClipAlphaField, shortest_double(*clip_alpha));
  // Only a non-default init is written, so a config (and a run's settings) from before the field reads the same.
  if (attention_init != AttentionInit::kBert) json.set(kAttentionInitField, attention_init_name(attention_init));
  return json;
}

absl::StatusOr<BertConfig> BertConfig::from_json(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("BERT config: expected a JSON object");
  BertConfig config;
  for (const auto& [key, value] : json.as_object()) {
    auto wrong_type = [&key = key, &value = value](const char* expected) {
      return absl::InvalidArgumentError(
          absl::StrCat("BERT config field \"", key, "\" must be ", expected, ", got ", value.dump()));
    };
    bool known = false;
    for (const IntField& f : kIntFields) {
      if (key != f.name) continue;
      if (!value.is_int64()) return wrong_type("an integer");
      config.*f.member = value.as_int64();
      known = true;
    }
    for (const FloatField& f : kFloatFields) {
      if (key != f.name) continue;
      if (!value.is_number()) return wrong_type("a number");
      config.*f.member = static_cast<float>(value.as_number());
      known = true;
    }
    if (known) continue;
    if (key == kClipAlphaField) {
      if (!value.is_number()) return wrong_type("a number");
      config.clip_alpha = static_cast<float>(value.as_number());
    } else if (key == kAttentionField) {
      if (!value.is_string()) return wrong_type("a string");
      BF_ASSIGN_OR_RETURN(config.attention, attention_variant_from_name(value.as_string()));
    } else if (key == kAttentionInitField) {
      if (!value.is_string()) return wrong_type("a string");
      BF_ASSIGN_OR_RETURN(config.attention_init, attention_init_from_name(value.as_string()));
    } else if (key == "hidden_act") {
      // Hugging Face's "gelu" is the exact erf GELU, the only activation bertforge implements.
      if (!value.is_string() || value.as_string() != "gelu") return wrong_type("\"gelu\" (exact erf GELU)");
    } else if (key == "position_embedding_type") {
      if (!value.is_string() || value.as_string() != "absolute") return wrong_type("\"absolute\"");
    } else if (absl::StartsWith(key, "bertforge_")) {
      return absl::InvalidArgumentError(absl::StrCat("unknown BERT config field \"", key, "\""));
    }
  }
  BF_RETURN_IF_ERROR(config.validate());
  return config;
}

absl::Status BertConfig::save(const std::string& path) const {
  return write_file_atomic(path, to_json().dump(2) + "\n");
}

absl::StatusOr<BertConfig> BertConfig::load(const std::string& path) {
  BF_ASSIGN_OR_RETURN(const std::string text, read_file(path));
  absl::StatusOr<Json> json = Json::parse(text);
  if (!json.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", json.status().message()));
  absl::StatusOr<BertConfig> config = from_json(*json);
  if (!config.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", config.status().message()));
  return config;
}

}  // namespace bertforge
