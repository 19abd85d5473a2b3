// Loading pretrained weights into a freshly built BertForMaskedLM, the MLM head optional.
#include "models/pretrained_weights.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/safetensors.h"
#include "models/config_mismatch.h"

namespace bertforge {

absl::StatusOr<PretrainedLoad> load_pretrained_weights(const std::string& path, BertForMaskedLM& model) {
  BF_ASSIGN_OR_RETURN(const SafetensorsFile file, read_safetensors(path));
  absl::StatusOr<HfCheckpointLayout> layout = detect_hf_layout(file.tensors);
  if (!layout.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", layout.status().message()));
  PretrainedLoad load;
  load.layout = *layout;
  StateDict state = to_bertforge_names(file.tensors, *layout, &load.ignored);
  // An encoder-only file: the model's own freshly initialised MLM head completes it, so that the load can stay
  // strict (every other name checked, nothing loaded on an error).
  if (!layout->mlm_head) {
    for (const auto& [name, parameter] : model.named_parameters()) {
      if (!absl::StartsWith(name, "cls.")) continue;
      state.emplace_back(name, parameter.detach().clone());
      load.fresh.push_back(name);
    }
  }
  const absl::Status status = model.load_state_dict(state, LoadMode::kStrict);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " (", layout->describe(), ") ",
                                                   explain_load_failure(model.config(), state, status.message())));
  }
  return load;
}

}  // namespace bertforge
