// Hugging Face BERT checkpoint layouts and loading them into BertForMaskedLM (see hf_checkpoint.h).
#include "models/hf_checkpoint.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/safetensors.h"
#include "models/config_mismatch.h"

namespace bertforge {
namespace {

constexpr absl::string_view kPrefix = "bert.";
constexpr absl::string_view kMlmHead = "cls.predictions.";

// The names BertModel saves at its top level; a BertForMaskedLM saves them under "bert.".
bool is_encoder_name(absl::string_view name) {
  return absl::StartsWith(name, "embeddings.") || absl::StartsWith(name, "encoder.") ||
         absl::StartsWith(name, "pooler.");
}

// The pooler and the next-sentence-prediction head: in Hugging Face's checkpoints, not in bertforge's BERT.
bool is_set_aside(absl::string_view bertforge_name) {
  return absl::StartsWith(bertforge_name, "bert.pooler.") || absl::StartsWith(bertforge_name, "cls.seq_relationship.");
}

}  // namespace

std::string HfCheckpointLayout::describe() const {
  if (bert_prefix) {
    return mlm_head ? "BertForMaskedLM layout (bert.* + cls.predictions.*)"
                    : "encoder-only layout with the bert. prefix (no cls.predictions.*: no MLM head)";
  }
  return mlm_head ? "BertModel layout (no bert. prefix) with cls.predictions.*"
                  : "BertModel layout (encoder only, no bert. prefix, no MLM head)";
}

absl::StatusOr<HfCheckpointLayout> detect_hf_layout(const StateDict& tensors) {
  bool prefixed = false, unprefixed = false, head = false;
  for (const auto& [name, tensor] : tensors) {
    prefixed |= absl::StartsWith(name, kPrefix);
    unprefixed |= is_encoder_name(name);
    head |= absl::StartsWith(name, kMlmHead);
  }
  if (prefixed && unprefixed) {
    return absl::InvalidArgumentError(
        "the checkpoint mixes bert.-prefixed names (BertForMaskedLM) with unprefixed encoder names (BertModel)");
  }
  if (!prefixed && !unprefixed) {
    return absl::InvalidArgumentError(
        "the checkpoint holds no BERT encoder: expected bert.embeddings.* (BertForMaskedLM) or embeddings.* "
        "(BertModel)");
  }
  HfCheckpointLayout layout;
  layout.bert_prefix = prefixed;
  layout.mlm_head = head;
  return layout;
}

StateDict to_bertforge_names(const StateDict& tensors, const HfCheckpointLayout& layout,
                             std::vector<std::string>* ignored) {
  StateDict out;
  out.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const std::string renamed = !layout.bert_prefix && is_encoder_name(name) ? absl::StrCat(kPrefix, name) : name;
    if (is_set_aside(renamed)) {
      if (ignored != nullptr) ignored->push_back(name);
      continue;
    }
    out.emplace_back(renamed, tensor);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<BertForMaskedLM>> load_hf_bert(const std::string& path, const BertConfig& config,
                                                              HfLoadReport* report) {
  BF_ASSIGN_OR_RETURN(const SafetensorsFile file, read_safetensors(path));
  absl::StatusOr<HfCheckpointLayout> layout = detect_hf_layout(file.tensors);
  if (!layout.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", layout.status().message()));
  BF_RETURN_IF_ERROR(config.validate());

  HfLoadReport found;
  found.layout = *layout;
  const StateDict state = to_bertforge_names(file.tensors, *layout, &found.ignored);
  auto model = std::make_unique<BertForMaskedLM>(config, /*init_seed=*/0, layout->head());
  const absl::Status status = model->load_state_dict(state, LoadMode::kStrict);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " (", layout->describe(), ") ", explain_load_failure(config, state, status.message())));
  }
  model->eval();  // for inference (hf_checkpoint.h)
  if (report != nullptr) *report = std::move(found);
  return model;
}

}  // namespace bertforge
