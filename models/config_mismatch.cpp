// Config fields read back from tensor shapes and compared with a BertConfig.
#include "models/config_mismatch.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "models/encoder_linears.h"

namespace bertforge {
namespace {

const Tensor* find(const StateDict& tensors, absl::string_view name) {
  for (const auto& [key, tensor] : tensors) {
    if (key == name) return &tensor;
  }
  return nullptr;
}

// Dimension `dim` of the 2-D tensor `name`, if there is one.
std::optional<int64_t> dim_of(const StateDict& tensors, absl::string_view name, int dim) {
  const Tensor* tensor = find(tensors, name);
  if (tensor == nullptr || tensor->dim() != 2) return std::nullopt;
  return tensor->shape()[dim];
}

std::optional<int64_t> layer_count(const StateDict& tensors) {
  std::optional<int64_t> count;
  for (const auto& [name, tensor] : tensors) {
    if (const auto split = split_encoder_layer_name(name)) count = std::max(count.value_or(0), split->first + 1);
  }
  return count;
}

}  // namespace

std::string describe_config_mismatch(const BertConfig& config, const StateDict& tensors) {
  struct Field {
    const char* name;
    int64_t in_config;
    std::optional<int64_t> in_checkpoint;
  };
  const std::vector<Field> fields = {
      {"vocab_size", config.vocab_size, dim_of(tensors, "bert.embeddings.word_embeddings.weight", 0)},
      {"hidden_size", config.hidden_size, dim_of(tensors, "bert.embeddings.word_embeddings.weight", 1)},
      {"num_hidden_layers", config.num_hidden_layers, layer_count(tensors)},
      {"intermediate_size", config.intermediate_size,
       dim_of(tensors, encoder_linear_info(EncoderLinear::kIntermediate).weight_name(0), 0)},
      {"max_position_embeddings", config.max_position_embeddings,
       dim_of(tensors, "bert.embeddings.position_embeddings.weight", 0)},
      {"type_vocab_size", config.type_vocab_size, dim_of(tensors, "bert.embeddings.token_type_embeddings.weight", 0)},
  };
  std::vector<std::string> differing;
  for (const Field& field : fields) {
    if (field.in_checkpoint && *field.in_checkpoint != field.in_config) {
      differing.push_back(absl::StrCat(field.name, " ", field.in_config, " in the config, ", *field.in_checkpoint,
                                       " in the checkpoint"));
    }
  }
  return absl::StrJoin(differing, "; ");
}

std::string explain_load_failure(const BertConfig& config, const StateDict& tensors, absl::string_view load_error) {
  const std::string fields = describe_config_mismatch(config, tensors);
  if (fields.empty()) return absl::StrCat("does not fit the model: ", load_error);
  constexpr size_t kShown = 3;
  const std::vector<absl::string_view> problems = absl::StrSplit(load_error, "; ");
  std::string details = absl::StrJoin(problems.begin(), problems.begin() + std::min(kShown, problems.size()), "; ");
  if (problems.size() > kShown) absl::StrAppend(&details, "; and ", problems.size() - kShown, " more");
  return absl::StrCat("does not fit the model: ", fields, "\n  details: ", details);
}

}  // namespace bertforge
