// quant/channel_fold.cpp — folding per-input-channel scales into post-LN BERT, and their checkpoint form
// (see channel_fold.h).
#include "quant/channel_fold.h"

#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "autograd/grad_mode.h"
#include "core/check.h"
#include "ops/elementwise.h"

namespace bertforge::quant {
namespace {

constexpr const char* kAttentionResidual = "attention_residual";
constexpr const char* kFfnResidual = "ffn_residual";
constexpr const char* kGeluOutput = "gelu_output";

// t *= factor in place (factor broadcast against t), keeping t's storage: the model's parameters are edited.
void scale_in_place(Tensor& t, const Tensor& factor) {
  t.copy_(mul(t, factor.device() == t.device() ? factor : factor.to(t.device())));
}

// slot *= factor, where an undefined slot means 1.
void compose(Tensor& slot, const Tensor& factor) {
  slot = slot.defined() ? mul(slot, factor.device() == slot.device() ? factor : factor.to(slot.device()))
                        : factor.clone();
}

absl::Status check_scale(const Tensor& s, int64_t width, int64_t layer, FoldGroup group) {
  const auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("fold_input_scales: layer ", layer, " group ", fold_group_name(group), ": ", what));
  };
  if (s.dtype() != DType::kF32 || s.shape() != Shape{width}) {
    return bad(absl::StrCat("expected an f32 scale of shape [", width, "], got ", s.str()));
  }
  for (float v : s.to_float_vector()) {
    if (!std::isfinite(v) || v == 0.0f) return bad(absl::StrCat("scales must be finite and non-zero, found ", v));
  }
  return absl::OkStatus();
}

// Folds one group's scale s (checked) into layer l of the model.
void fold_group(BertForMaskedLM& model, int64_t l, FoldGroup group, const Tensor& s) {
  BertLayer& layer = *model.layers[static_cast<size_t>(l)];
  const Tensor inv = reciprocal(s);
  for (const EncoderLinearInfo& linear : fold_group_linears(group)) {
    scale_in_place(linear.module(layer).weight, s);  // W[:, j] *= s_j
  }
  switch (group) {
    case FoldGroup::kQkv: {
      LayerNorm& ln = l == 0 ? model.embeddings.layer_norm : model.layers[static_cast<size_t>(l - 1)]->output_layer_norm;
      scale_in_place(ln.weight, inv);
      scale_in_place(ln.bias, inv);
      compose(layer.folded.attention_residual, s);
      Tensor& gate = layer.attention_self.gate_weight;  // (H, d): head h reads channels [h d, (h + 1) d)
      if (gate.defined()) scale_in_place(gate, s.contiguous().view(gate.shape()));
      break;
    }
    case FoldGroup::kContext: {
      Linear& value = layer.attention_self.value;
      scale_in_place(value.weight, inv.view({inv.size(0), 1}));  // rows
      scale_in_place(value.bias, inv);
      break;
    }
    case FoldGroup::kFfnInput:
      scale_in_place(layer.attention_output_layer_norm.weight, inv);
      scale_in_place(layer.attention_output_layer_norm.bias, inv);
      compose(layer.folded.ffn_residual, s);
      break;
    case FoldGroup::kGeluOutput:
      compose(layer.folded.gelu_output, inv);
      break;
  }
}

// Whether `t` is a well-formed folded multiplier of width `width`.
absl::Status check_multiplier(const std::string& name, const Tensor& t, int64_t width) {
  if (t.dtype() != DType::kF32 || t.shape() != Shape{width}) {
    return absl::InvalidArgumentError(absl::StrCat("folded scale ", name, ": expected f32 [", width, "], got ",
                                                   t.str()));
  }
  for (float v : t.to_float_vector()) {
    if (!std::isfinite(v) || v == 0.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat("folded scale ", name, ": values must be finite and non-zero, found ", v));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Tensor reciprocal(const Tensor& s) {
  std::vector<float> v = s.to_float_vector();
  for (float& x : v) x = 1.0f / x;
  return Tensor::from_vector(v, s.shape());
}

const char* fold_group_name(FoldGroup group) {
  switch (group) {
    case FoldGroup::kQkv: return "qkv";
    case FoldGroup::kContext: return "context";
    case FoldGroup::kFfnInput: return "ffn_input";
    case FoldGroup::kGeluOutput: return "gelu_output";
  }
  return "?";
}

const char* fold_group_producer(FoldGroup group) {
  switch (group) {
    case FoldGroup::kQkv: return "layernorm";
    case FoldGroup::kContext: return "value";
    case FoldGroup::kFfnInput: return "layernorm";
    case FoldGroup::kGeluOutput: return "gelu*1/s";
  }
  return "?";
}

std::vector<EncoderLinearInfo> fold_group_linears(FoldGroup group) {
  switch (group) {
    case FoldGroup::kQkv:
      return {encoder_linear_info(EncoderLinear::kQuery), encoder_linear_info(EncoderLinear::kKey),
              encoder_linear_info(EncoderLinear::kValue)};
    case FoldGroup::kContext: return {encoder_linear_info(EncoderLinear::kAttentionOutput)};
    case FoldGroup::kFfnInput: return {encoder_linear_info(EncoderLinear::kIntermediate)};
    case FoldGroup::kGeluOutput: return {encoder_linear_info(EncoderLinear::kOutput)};
  }
  return {};
}

Tensor group_weight(const BertForMaskedLM& model, int64_t layer, FoldGroup group) {
  BertLayer& bert_layer = *model.layers[static_cast<size_t>(layer)];
  std::vector<float> rows;
  int64_t N = 0, K = 0;
  for (const EncoderLinearInfo& linear : fold_group_linears(group)) {
    const Tensor w = linear.module(bert_layer).weight.to(Device::cpu()).contiguous();
    const std::vector<float> values = w.to_float_vector();
    rows.insert(rows.end(), values.begin(), values.end());
    N += w.size(0);
    K = w.size(1);
  }
  return Tensor::from_vector(rows, {N, K});
}

Tensor& LayerInputScales::at(FoldGroup group) {
  switch (group) {
    case FoldGroup::kQkv: return qkv;
    case FoldGroup::kContext: return context;
    case FoldGroup::kFfnInput: return ffn_input;
    case FoldGroup::kGeluOutput: return gelu_output;
  }
  BF_CHECK(false, "unknown fold group");
  return qkv;
}

const Tensor& LayerInputScales::at(FoldGroup group) const {
  return const_cast<LayerInputScales*>(this)->at(group);
}

absl::Status fold_input_scales(BertForMaskedLM& model, const std::vector<LayerInputScales>& scales) {
  const BertConfig& config = model.config();
  if (static_cast<int64_t>(scales.size()) > config.num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat("fold_input_scales: ", scales.size(), " layers of scales for a ",
                                                   config.num_hidden_layers, "-layer model"));
  }
  for (size_t l = 0; l < scales.size(); ++l) {
    for (FoldGroup group : kFoldGroups) {
      const Tensor& s = scales[l].at(group);
      if (!s.defined()) continue;
      const int64_t width = group == FoldGroup::kGeluOutput ? config.intermediate_size : config.hidden_size;
      BF_RETURN_IF_ERROR(check_scale(s, width, static_cast<int64_t>(l), group));
      for (const EncoderLinearInfo& linear : fold_group_linears(group)) {
        if (linear.module(*model.layers[l]).has_forward_override()) {
          return absl::FailedPreconditionError(absl::StrCat("fold_input_scales: layer ", l, " ", linear.name,
                                                            " has a forward override; fold the FP model"));
        }
      }
    }
  }
  autograd::NoGradGuard no_grad;
  for (size_t l = 0; l < scales.size(); ++l) {
    for (FoldGroup group : kFoldGroups) {
      if (scales[l].at(group).defined()) fold_group(model, static_cast<int64_t>(l), group, scales[l].at(group));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<BertForMaskedLM> clone_bert(const BertForMaskedLM& model) {
  auto copy = std::make_unique<BertForMaskedLM>(model.config(), /*init_seed=*/0,
                                                model.has_mlm_head() ? BertHead::kMaskedLM : BertHead::kEncoderOnly);
  StateDict state;
  for (const auto& [name, tensor] : model.state_dict()) state.emplace_back(name, tensor.to(Device::cpu()).clone());
  const absl::Status loaded = copy->load_state_dict(state, LoadMode::kStrict);
  BF_CHECK(loaded.ok(), "clone_bert: ", loaded.ToString());
  for (size_t l = 0; l < model.layers.size(); ++l) {
    const BertLayer::FoldedScales& from = model.layers[l]->folded;
    BertLayer::FoldedScales& to = copy->layers[l]->folded;
    for (auto [src, dst] : {std::pair{&from.attention_residual, &to.attention_residual},
                            std::pair{&from.ffn_residual, &to.ffn_residual},
                            std::pair{&from.gelu_output, &to.gelu_output}}) {
      if (src->defined()) *dst = src->to(Device::cpu()).clone();
    }
  }
  copy->eval();
  return copy;
}

std::string folded_scale_name(int64_t layer, const char* kind) {
  return absl::StrCat(encoder_layer_prefix(layer), "folded.", kind);
}

StateDict folded_scale_tensors(const BertForMaskedLM& model) {
  StateDict out;
  for (size_t l = 0; l < model.layers.size(); ++l) {
    const BertLayer::FoldedScales& f = model.layers[l]->folded;
    const int64_t layer = static_cast<int64_t>(l);
    if (f.attention_residual.defined()) out.emplace_back(folded_scale_name(layer, kAttentionResidual),
                                                         f.attention_residual.to(Device::cpu()));
    if (f.ffn_residual.defined()) out.emplace_back(folded_scale_name(layer, kFfnResidual),
                                                   f.ffn_residual.to(Device::cpu()));
    if (f.gelu_output.defined()) out.emplace_back(folded_scale_name(layer, kGeluOutput),
                                                  f.gelu_output.to(Device::cpu()));
  }
  return out;
}

absl::StatusOr<std::vector<BertLayer::FoldedScales>> take_folded_scales(StateDict& tensors,
                                                                        const BertConfig& config) {
  const int64_t L = config.num_hidden_layers;
  std::vector<BertLayer::FoldedScales> scales(static_cast<size_t>(L));
  StateDict rest;
  for (auto& [name, tensor] : tensors) {
    const bool legacy_awq = absl::EndsWith(name, ".output.dense.awq_input_scale");
    if (!legacy_awq && !absl::StrContains(name, ".folded.")) {
      rest.emplace_back(std::move(name), std::move(tensor));
      continue;
    }
    // [bert.]encoder.layer.<i>.folded.<kind> or [bert.]encoder.layer.<i>.output.dense.awq_input_scale
    const std::vector<std::string> parts = absl::StrSplit(name, '.');
    const size_t at = !parts.empty() && parts[0] == "bert" ? 1 : 0;
    int64_t layer = -1;
    const bool parsed = parts.size() == at + (legacy_awq ? 6 : 5) && parts[at] == "encoder" &&
                        parts[at + 1] == "layer" && absl::SimpleAtoi(parts[at + 2], &layer) && layer >= 0 &&
                        layer < L && (legacy_awq || parts[at + 3] == "folded");
    Tensor* slot = nullptr;
    int64_t width = config.hidden_size;
    BertLayer::FoldedScales& f = scales[static_cast<size_t>(parsed ? layer : 0)];
    if (parsed && legacy_awq) {
      slot = &f.gelu_output;
      width = config.intermediate_size;
    } else if (parsed && parts[at + 4] == kAttentionResidual) {
      slot = &f.attention_residual;
    } else if (parsed && parts[at + 4] == kFfnResidual) {
      slot = &f.ffn_residual;
    } else if (parsed && parts[at + 4] == kGeluOutput) {
      slot = &f.gelu_output;
      width = config.intermediate_size;
    }
    if (slot == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("folded scale ", name, ": expected ",
                                                     folded_scale_name(0, kAttentionResidual),
                                                     " (or ffn_residual, gelu_output) with a layer below ", L));
    }
    BF_RETURN_IF_ERROR(check_multiplier(name, tensor, width));
    if (slot->defined()) return absl::InvalidArgumentError(absl::StrCat("folded scale ", name, " given twice"));
    *slot = legacy_awq ? reciprocal(tensor) : tensor.contiguous();  // AWQ stored s; the layer multiplies by 1/s
  }
  tensors = std::move(rest);
  return scales;
}

void install_folded_scales(BertForMaskedLM& model, const std::vector<BertLayer::FoldedScales>& scales) {
  BF_CHECK(scales.size() <= model.layers.size(), "install_folded_scales: ", scales.size(), " layers of scales for ",
           model.layers.size(), " layers");
  for (size_t l = 0; l < scales.size(); ++l) model.layers[l]->folded = scales[l];
}

int64_t folded_layer_count(const BertForMaskedLM& model) {
  int64_t n = 0;
  for (const auto& layer : model.layers) {
    const BertLayer::FoldedScales& f = layer->folded;
    n += f.attention_residual.defined() || f.ffn_residual.defined() || f.gelu_output.defined() ? 1 : 0;
  }
  return n;
}

}  // namespace bertforge::quant
