// quant/quantized_model.cpp — building, saving and loading fake-quantized BERTs (see quantized_model.h).
#include "quant/quantized_model.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/file_io.h"
#include "models/hf_checkpoint.h"
#include "quant/awq_scales.h"
#include "quant/quantized_linear.h"

namespace bertforge::quant {

// ---- The activation spec ------------------------------------------------------------------------------------

Json ActivationQuantSpec::to_json() const {
  Json j = Json::object();
  j.set("format_version", kActivationSpecFormatVersion);
  j.set("activation_bits", bits);
  Json excluded = Json::array();
  for (const std::string& name : exclude) excluded.push_back(name);
  j.set("exclude", std::move(excluded));
  if (quantized()) j.set("calibration", calibration.to_json());
  return j;
}

absl::StatusOr<ActivationQuantSpec> ActivationQuantSpec::from_json(const Json& json) {
  const auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("activation spec: ", what));
  };
  if (!json.is_object()) return bad("expected a JSON object");
  for (const auto& [key, value] : json.as_object()) {
    if (key != "format_version" && key != "activation_bits" && key != "exclude" && key != "calibration") {
      return bad(absl::StrCat("unknown key \"", key, "\""));
    }
  }
  const Json* version = json.get("format_version");
  if (version == nullptr || !version->is_int64() || version->as_int64() != kActivationSpecFormatVersion) {
    return bad(absl::StrCat("\"format_version\" must be ", kActivationSpecFormatVersion));
  }
  ActivationQuantSpec spec;
  const Json* bits = json.get("activation_bits");
  const bool bits_ok = bits != nullptr && bits->is_int64() &&
                       (bits->as_int64() == 0 || (bits->as_int64() >= 2 && bits->as_int64() <= 16));
  if (!bits_ok) {
    return bad("\"activation_bits\" must be 0 (FP) or in [2, 16]");
  }
  spec.bits = static_cast<int>(bits->as_int64());
  if (const Json* exclude = json.get("exclude")) {
    if (!exclude->is_array()) return bad("\"exclude\" must be an array of tap point names");
    for (const Json& name : exclude->as_array()) {
      if (!name.is_string()) return bad("\"exclude\" must be an array of tap point names");
      spec.exclude.push_back(name.as_string());
    }
  }
  const Json* calibration = json.get("calibration");
  if (spec.quantized() != (calibration != nullptr)) {
    return bad(spec.quantized() ? "quantized activations need \"calibration\" ranges"
                                : "\"calibration\" given, but activation_bits is 0 (FP activations)");
  }
  if (calibration != nullptr) {
    BF_ASSIGN_OR_RETURN(spec.calibration, ActivationRangeTable::from_json(*calibration));
  }
  return spec;
}

std::string activation_spec_path(const std::string& model_path) {
  absl::string_view stem = model_path;
  if (absl::EndsWith(stem, ".safetensors")) stem.remove_suffix(std::strlen(".safetensors"));
  return absl::StrCat(stem, ".activations.json");
}

// ---- Detection ----------------------------------------------------------------------------------------------

absl::StatusOr<bool> is_quantized_checkpoint(const std::string& path) {
  // Only the header: 8-byte little-endian length, then that many bytes of JSON (core/safetensors.h).
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  unsigned char length_bytes[8] = {};
  if (!in.read(reinterpret_cast<char*>(length_bytes), 8)) {
    return absl::DataLossError(absl::StrCat(path, ": too short for a safetensors file"));
  }
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | length_bytes[i];
  constexpr uint64_t kMaxHeader = 100'000'000;  // the reader's limit
  if (length > kMaxHeader) return absl::InvalidArgumentError(absl::StrCat(path, ": safetensors header too large"));
  std::string header(length, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(length))) {
    return absl::DataLossError(absl::StrCat(path, ": truncated safetensors header"));
  }
  absl::StatusOr<Json> json = Json::parse(header);
  if (!json.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": bad safetensors header: ", json.status().message()));
  }
  const Json* metadata = json->is_object() ? json->get("__metadata__") : nullptr;
  return metadata != nullptr && metadata->is_object() && metadata->get(kQuantMetadataKey) != nullptr;
}

// ---- Building -----------------------------------------------------------------------------------------------

std::string QuantizedBert::describe(const ActivationQuantSpec& spec) const {
  // Weight schemes, grouped: usually one scheme for every tensor.
  std::map<std::string, int> counts;
  for (const auto& [name, scheme] : weight_schemes) ++counts[scheme.str()];
  std::string weights;
  for (const auto& [scheme, count] : counts) {
    absl::StrAppend(&weights, weights.empty() ? "" : ", ", scheme, " (", count, " tensors)");
  }
  if (weights.empty()) weights = "FP";
  const std::string activations =
      spec.quantized() ? absl::StrCat(spec.bits, "-bit asymmetric per tensor (", spec.calibration.observer, ", ",
                                      spec.calibration.batches, " calibration batches)")
                       : std::string("FP");
  const std::string awq = awq_scaled_layers == 0
                              ? std::string()
                              : absl::StrCat("; AWQ-scaled GELU outputs in ", awq_scaled_layers, " layers");
  return absl::StrCat("weights ", weights, "; activations ", activations, awq);
}

const char* quantized_execution_name(QuantizedExecution execution) {
  switch (execution) {
    case QuantizedExecution::kFakeQuant: return "fake-quant";
    case QuantizedExecution::kInt8: return "int8";
  }
  return "?";
}

namespace {

// The tap site whose range quantizes the input of query, key and value in `layer` (quantized_model.h).
TapSite layer_input_site(int64_t layer) {
  return layer == 0 ? TapSite{kEmbeddingsLayer, TapPoint::kEmbeddingLayerNorm}
                    : TapSite{layer - 1, TapPoint::kLayerOutput};
}

// Installs the int8 execution (quant/quantized_linear.h) on the six encoder Linears of every layer. `quantized`:
// the quantized weights by bertforge name; every one of them must be such a Linear's weight.
absl::Status install_int8_linears(BertForMaskedLM& model,
                                  const std::map<std::string, const QuantizedWeight*>& quantized,
                                  const ActivationQuantizer& activations) {
  std::set<std::string> installed;
  for (int64_t l = 0; l < static_cast<int64_t>(model.layers.size()); ++l) {
    BertLayer& layer = *model.layers[l];
    struct Slot {
      const char* name;  // under bert.encoder.layer.<l>.
      Linear& linear;
      TapSite input;
    };
    const Slot slots[] = {
        {"attention.self.query", layer.attention_self.query, layer_input_site(l)},
        {"attention.self.key", layer.attention_self.key, layer_input_site(l)},
        {"attention.self.value", layer.attention_self.value, layer_input_site(l)},
        {"attention.output.dense", layer.attention_output_dense, {l, TapPoint::kContext}},
        {"intermediate.dense", layer.intermediate_dense, {l, TapPoint::kAttentionLayerNorm}},
        {"output.dense", layer.output_dense, {l, TapPoint::kGelu}},
    };
    for (const Slot& slot : slots) {
      const std::string name = absl::StrCat("bert.encoder.layer.", l, ".", slot.name, ".weight");
      const auto it = quantized.find(name);
      if (it == quantized.end()) continue;  // an FP weight: the Linear stays FP
      const ActivationQuantParams* input = activations.params(slot.input);
      if (input == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("int8 execution of ", name, " needs its input ",
                                                       slot.input.name(), " quantized, but it is excluded"));
      }
      absl::StatusOr<QuantizedLinear> linear = QuantizedLinear::create(*it->second, slot.linear.bias, *input);
      if (!linear.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(name, " (input ", slot.input.name(), "): ",
                                                       linear.status().message()));
      }
      slot.linear.set_forward_override(as_forward_override(std::move(*linear)));
      installed.insert(name);
    }
  }
  for (const auto& [name, qw] : quantized) {
    if (installed.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "int8 execution covers the six encoder Linears per layer, but ", name, " is quantized too"));
    }
  }
  return absl::OkStatus();
}

// The int8 build on top of the fake-quant one (quantized_model.h): overrides, then the hook of the other points.
absl::Status make_int8(QuantizedBert& bert, const QuantizedStateDict& state, const HfCheckpointLayout& layout,
                       const ActivationQuantSpec& spec, const QuantizedBuildOptions& options) {
  if (bert.awq_scaled_layers > 0) {  // its hook scales the GELU outputs; the int8 hook below would drop it
    return absl::InvalidArgumentError(absl::StrCat("int8 execution does not support AWQ-scaled GELU outputs (",
                                                   bert.awq_scaled_layers, " layers)"));
  }
  if (!spec.quantized() || spec.bits > 8 || !bert.activations.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int8 execution needs activations quantized to at most 8 bits, the model has ",
        spec.quantized() ? absl::StrCat(spec.bits, "-bit") : "FP", " activations"));
  }
  std::map<std::string, const QuantizedWeight*> quantized;  // by bertforge name
  for (const auto& [name, qw] : state.quantized) {
    const StateDict renamed = to_bertforge_names({{name, Tensor()}}, layout);
    quantized[renamed.empty() ? name : renamed.front().first] = &qw;
  }
  BF_RETURN_IF_ERROR(install_int8_linears(*bert.model, quantized, *bert.activations));
  if (!options.fake_quant_taps) {
    bert.model->set_hook(nullptr);
    return absl::OkStatus();
  }
  ActivationQuantOptions hook_options{spec.bits, spec.exclude};
  hook_options.exclude.push_back(tap_point_name(TapPoint::kContext));
  hook_options.exclude.push_back(tap_point_name(TapPoint::kGelu));
  BF_ASSIGN_OR_RETURN(const ActivationQuantizer hook,
                      ActivationQuantizer::create(spec.calibration, bert.model->config().num_hidden_layers,
                                                  hook_options));
  bert.model->set_hook(hook.hook());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuantizedBert> build_quantized_bert(const QuantizedStateDict& state, const BertConfig& config,
                                                   const ActivationQuantSpec& spec,
                                                   const QuantizedBuildOptions& options) {
  StateDict tensors = state.fp;
  QuantizedBert bert;
  for (const auto& [name, qw] : state.quantized) {
    tensors.emplace_back(name, dequantize(qw));  // the int8 execution path replaces this (file comment)
    bert.weight_schemes.emplace_back(name, qw.scheme);
  }
  // AWQ's scaled GELU outputs are not parameters: they become a hook (quant/awq_scales.h).
  BF_ASSIGN_OR_RETURN(const AwqInputScales awq_scales,
                      take_awq_input_scales(tensors, config.num_hidden_layers, config.intermediate_size));
  bert.awq_scaled_layers = awq_scales.count();
  BF_ASSIGN_OR_RETURN(const HfCheckpointLayout layout, detect_hf_layout(tensors));
  bert.model = std::make_unique<BertForMaskedLM>(config, /*init_seed=*/0, layout.head());
  BF_RETURN_IF_ERROR(bert.model->load_state_dict(to_bertforge_names(tensors, layout), LoadMode::kStrict));
  bert.model->eval();
  if (spec.quantized()) {
    BF_ASSIGN_OR_RETURN(ActivationQuantizer quantizer,
                        ActivationQuantizer::create(spec.calibration, config.num_hidden_layers,
                                                    ActivationQuantOptions{spec.bits, spec.exclude}));
    bert.model->set_hook(quantizer.hook());
    bert.activations = std::move(quantizer);
  }
  if (!awq_scales.empty()) {
    if (options.execution != QuantizedExecution::kFakeQuant) {
      return absl::InvalidArgumentError("AWQ checkpoints (scaled GELU outputs) run with fake-quant execution only");
    }
    bert.model->set_hook(awq_scaled_activation_hook(awq_scales, bert.model->hook()));
  }
  if (options.execution == QuantizedExecution::kInt8) {
    BF_RETURN_IF_ERROR(make_int8(bert, state, layout, spec, options));
  }
  return bert;
}

absl::Status save_quantized_bert(const std::string& model_path, const QuantizedStateDict& state,
                                 const ActivationQuantSpec& spec) {
  BF_RETURN_IF_ERROR(save_quantized_checkpoint(model_path, state));
  return write_file_atomic(activation_spec_path(model_path), spec.to_json().dump(2) + "\n");
}

absl::StatusOr<LoadedQuantizedBert> load_quantized_bert(const std::string& model_path, const BertConfig& config,
                                                        const QuantizedBuildOptions& options) {
  BF_ASSIGN_OR_RETURN(const QuantizedStateDict state, load_quantized_checkpoint(model_path));
  const std::string spec_path = activation_spec_path(model_path);
  absl::StatusOr<std::string> spec_text = read_file(spec_path);
  if (!spec_text.ok()) {
    return absl::NotFoundError(absl::StrCat("the quantized checkpoint ", model_path, " needs its activation spec ",
                                            spec_path, ": ", spec_text.status().message()));
  }
  absl::StatusOr<Json> spec_json = Json::parse(*spec_text);
  if (!spec_json.ok()) return absl::InvalidArgumentError(absl::StrCat(spec_path, ": ", spec_json.status().message()));
  absl::StatusOr<ActivationQuantSpec> spec = ActivationQuantSpec::from_json(*spec_json);
  if (!spec.ok()) return absl::InvalidArgumentError(absl::StrCat(spec_path, ": ", spec.status().message()));
  LoadedQuantizedBert loaded;
  loaded.spec = std::move(*spec);
  BF_ASSIGN_OR_RETURN(loaded.bert, build_quantized_bert(state, config, loaded.spec, options));
  return loaded;
}

}  // namespace bertforge::quant
