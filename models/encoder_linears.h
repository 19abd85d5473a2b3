// models/encoder_linears.h — the six Linears of every encoder layer (BertLayer) in one table, for the code that
// treats them alike (quant/: PTQ, AWQ, channel folding, the int8 model), and the names of encoder layers.
//
// Per Linear: its parameter name under the layer prefix "bert.encoder.layer.<l>.", its module in a BertLayer, and
// the tap site of its input (models/forward_context.h), in forward order:
//   attention.self.query     the layer input: embeddings.layer_norm for layer 0 (dropout is the identity in eval),
//   attention.self.key         else layer.<l-1>.layer_output
//   attention.self.value
//   attention.output.dense   layer.<l>.context
//   intermediate.dense       layer.<l>.attention_layer_norm
//   output.dense             layer.<l>.gelu
// Linears with the same input site are adjacent: query, key and value read the same tensor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "models/bert_layer.h"
#include "models/forward_context.h"
#include "models/layers.h"

namespace bertforge {

// "bert.encoder.layer.<layer>": the module name of encoder layer `layer` (0-based).
std::string encoder_layer_name(int64_t layer);
// "bert.encoder.layer.<layer>.": the prefix of that layer's parameter names.
std::string encoder_layer_prefix(int64_t layer);
// Splits "bert.encoder.layer.<l>.<rest>" into l and rest (<l> decimal digits, rest not empty); nullopt for any
// other name.
std::optional<std::pair<int64_t, absl::string_view>> split_encoder_layer_name(absl::string_view name);

// The tap site of encoder layer `layer`'s input (file comment).
TapSite layer_input_site(int64_t layer);

// The six Linears of a BertLayer, in forward order.
enum class EncoderLinear : int { kQuery, kKey, kValue, kAttentionOutput, kIntermediate, kOutput };
inline constexpr int kEncoderLinearCount = 6;

// One row per EncoderLinear, in enum order.
struct EncoderLinearInfo {
  EncoderLinear linear;
  const char* name;                     // under encoder_layer_prefix(l), without ".weight"
  Linear& (*module)(BertLayer& layer);  // this Linear of `layer`
  std::optional<TapPoint> input;        // the tap point of its input in the same layer; nullopt: the layer input

  // The tap site of its input in encoder layer `layer`.
  TapSite input_site(int64_t layer) const { return input ? TapSite{layer, *input} : layer_input_site(layer); }
  // "bert.encoder.layer.<layer>.<name>.weight".
  std::string weight_name(int64_t layer) const;
};

inline constexpr EncoderLinearInfo kEncoderLinears[kEncoderLinearCount] = {
    {EncoderLinear::kQuery, "attention.self.query", [](BertLayer& l) -> Linear& { return l.attention_self.query; },
     std::nullopt},
    {EncoderLinear::kKey, "attention.self.key", [](BertLayer& l) -> Linear& { return l.attention_self.key; },
     std::nullopt},
    {EncoderLinear::kValue, "attention.self.value", [](BertLayer& l) -> Linear& { return l.attention_self.value; },
     std::nullopt},
    {EncoderLinear::kAttentionOutput, "attention.output.dense",
     [](BertLayer& l) -> Linear& { return l.attention_output_dense; }, TapPoint::kContext},
    {EncoderLinear::kIntermediate, "intermediate.dense", [](BertLayer& l) -> Linear& { return l.intermediate_dense; },
     TapPoint::kAttentionLayerNorm},
    {EncoderLinear::kOutput, "output.dense", [](BertLayer& l) -> Linear& { return l.output_dense; }, TapPoint::kGelu},
};

inline const EncoderLinearInfo& encoder_linear_info(EncoderLinear linear) {
  return kEncoderLinears[static_cast<int>(linear)];
}

}  // namespace bertforge
