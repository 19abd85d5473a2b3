// quant/quantized_model.cpp — building, saving and loading fake-quantized BERTs (see quantized_model.h).
#include "quant/quantized_model.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/file_io.h"
#include "models/encoder_linears.h"
#include "models/hf_checkpoint.h"
#include "ops/matmul.h"
#include "quant/activation_quant.h"
#include "quant/channel_fold.h"
#include "quant/quantized_linear.h"

namespace bertforge::quant {

// ---- The activation spec ------------------------------------------------------------------------------------

const char* activation_scope_name(ActivationScope scope) {
  return scope == ActivationScope::kAllTaps ? "all_taps" : "linear_inputs";
}

const char* activation_granularity_name(ActivationGranularity granularity) {
  return granularity == ActivationGranularity::kPerTensor ? "per_tensor" : "per_token";
}

absl::StatusOr<ActivationScope> parse_activation_scope(absl::string_view name) {
  for (ActivationScope scope : {ActivationScope::kAllTaps, ActivationScope::kLinearInputs}) {
    if (name == activation_scope_name(scope)) return scope;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("activation scope must be all_taps or linear_inputs, got \"", name, "\""));
}

absl::StatusOr<ActivationGranularity> parse_activation_granularity(absl::string_view name) {
  for (ActivationGranularity granularity : {ActivationGranularity::kPerTensor, ActivationGranularity::kPerToken}) {
    if (name == activation_granularity_name(granularity)) return granularity;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("activation granularity must be per_tensor or per_token, got \"", name, "\""));
}

absl::Status ActivationQuantSpec::validate() const {
  if (bits != 0 && (bits < 2 || bits > 16)) {
    return absl::InvalidArgumentError(absl::StrCat("activation bits must be 0 (FP) or in [2, 16], got ", bits));
  }
  if (granularity == ActivationGranularity::kPerToken && scope != ActivationScope::kLinearInputs) {
    return absl::InvalidArgumentError(
        "per_token activations are computed where a Linear reads its input: they need the linear_inputs scope");
  }
  if (scope == ActivationScope::kLinearInputs && !exclude.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the linear_inputs scope quantizes the Linear inputs only: exclusions (", exclude.front(),
        ", ...) belong to the all_taps scope"));
  }
  return absl::OkStatus();
}

Json ActivationQuantSpec::to_json() const {
  Json j = Json::object();
  j.set("format_version", kActivationSpecFormatVersion);
  j.set("activation_bits", bits);
  Json excluded = Json::array();
  for (const std::string& name : exclude) excluded.push_back(name);
  j.set("exclude", std::move(excluded));
  j.set("scope", activation_scope_name(scope));
  j.set("granularity", activation_granularity_name(granularity));
  if (has_ranges()) j.set("calibration", calibration.to_json());
  return j;
}

absl::StatusOr<ActivationQuantSpec> ActivationQuantSpec::from_json(const Json& json) {
  const auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("activation spec: ", what));
  };
  if (!json.is_object()) return bad("expected a JSON object");
  for (const auto& [key, value] : json.as_object()) {
    if (key != "format_version" && key != "activation_bits" && key != "exclude" && key != "calibration" &&
        key != "scope" && key != "granularity") {
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
  // "scope" and "granularity": optional strings, parsed by `parse` into *field.
  const auto read_name = [&](const char* key, auto parse, auto* field) -> absl::Status {
    const Json* value = json.get(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_string()) return bad(absl::StrCat("\"", key, "\" must be a string"));
    auto parsed = parse(value->as_string());
    if (!parsed.ok()) return bad(parsed.status().message());
    *field = *parsed;
    return absl::OkStatus();
  };
  BF_RETURN_IF_ERROR(read_name("scope", parse_activation_scope, &spec.scope));
  BF_RETURN_IF_ERROR(read_name("granularity", parse_activation_granularity, &spec.granularity));
  if (absl::Status valid = spec.validate(); !valid.ok()) return bad(valid.message());
  const Json* calibration = json.get("calibration");
  if (spec.has_ranges() != (calibration != nullptr)) {
    return bad(spec.has_ranges() ? "quantized activations need \"calibration\" ranges"
                                 : "\"calibration\" given, but the activations are FP or per_token (no ranges)");
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
  std::string activations = "FP";
  if (spec.has_ranges()) {
    activations = absl::StrCat(spec.bits, "-bit asymmetric per tensor at ", activation_scope_name(spec.scope), " (",
                               spec.calibration.observer, ", ", spec.calibration.batches, " calibration batches)");
  } else if (spec.quantized()) {
    activations = absl::StrCat(spec.bits, "-bit asymmetric per token (dynamic) at ", activation_scope_name(spec.scope));
  }
  const std::string folded =
      folded_layers == 0 ? std::string() : absl::StrCat("; folded channel scales in ", folded_layers, " layers");
  return absl::StrCat("weights ", weights, "; activations ", activations, folded);
}

const char* quantized_execution_name(QuantizedExecution execution) {
  switch (execution) {
    case QuantizedExecution::kFakeQuant: return "fake-quant";
    case QuantizedExecution::kInt8: return "int8";
  }
  return "?";
}

namespace {

// How one encoder Linear quantizes its input.
struct LinearInput {
  const ActivationQuantParams* params = nullptr;   // per tensor: the calibrated parameters; nullptr per token
  int bits = 8;
};

// The int8 execution of one Linear, or the reason there is none.
absl::StatusOr<QuantizedLinear> int8_linear(const Linear& target, const QuantizedWeight& weight,
                                            const LinearInput& input) {
  return input.params != nullptr ? QuantizedLinear::create(weight, target.bias, *input.params)
                                 : QuantizedLinear::create_per_token(weight, target.bias, input.bits);
}

// The fake-quantizing override of one Linear (its input quantized, then the FP32 Linear).
absl::StatusOr<Linear::ForwardOverride> linear_override(const Linear& target, const LinearInput& input) {
  // Fake quantization of the input alone (linear_inputs scope), then the FP32 Linear with the dequantized weight.
  const Tensor w = target.weight, b = target.bias;
  if (input.params != nullptr) {
    const ActivationQuantParams params = *input.params;
    return Linear::ForwardOverride(
        [w, b, params](const Tensor& x) { return linear(fake_quantize_activation(x, params), w, b); });
  }
  const int bits = input.bits;
  return Linear::ForwardOverride(
      [w, b, bits](const Tensor& x) { return linear(fake_quantize_per_token(x, bits), w, b); });
}

// Installs an override (linear_override) on each of the six encoder Linears of every layer whose weight is in
// `quantized` (by bertforge name); every quantized weight must be such a Linear's. `activations`: the calibrated
// parameters (per tensor), or nullptr for per-token inputs of `bits` bits.
absl::Status install_linear_overrides(BertForMaskedLM& model,
                                      const std::map<std::string, const QuantizedWeight*>& quantized,
                                      const ActivationQuantizer* activations, int bits,
                                      QuantizedExecution execution) {
  std::set<std::string> installed;
  for (int64_t l = 0; l < static_cast<int64_t>(model.layers.size()); ++l) {
    BertLayer& layer = *model.layers[l];
    std::optional<QuantizedLinear> int8[kEncoderLinearCount];  // int8 execution: installed after the loop
    for (const EncoderLinearInfo& slot : kEncoderLinears) {
      const std::string name = slot.weight_name(l);
      const auto it = quantized.find(name);
      if (it == quantized.end()) continue;  // an FP weight: the Linear stays FP
      const TapSite input_site = slot.input_site(l);
      Linear& target = slot.module(layer);
      LinearInput input{nullptr, bits};
      if (activations != nullptr) {
        input.params = activations->params(input_site);
        if (input.params == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat(quantized_execution_name(execution), " execution of ", name,
                                                         " needs its input ", input_site.name(),
                                                         " quantized, but it is excluded"));
        }
      }
      const auto failed = [&](const absl::Status& status) {
        return absl::InvalidArgumentError(absl::StrCat(name, " (input ", input_site.name(), "): ", status.message()));
      };
      if (execution == QuantizedExecution::kInt8) {
        absl::StatusOr<QuantizedLinear> q = int8_linear(target, *it->second, input);
        if (!q.ok()) return failed(q.status());
        int8[static_cast<int>(slot.linear)] = std::move(*q);
      } else {
        absl::StatusOr<Linear::ForwardOverride> forward = linear_override(target, input);
        if (!forward.ok()) return failed(forward.status());
        target.set_forward_override(std::move(*forward));
      }
      installed.insert(name);
    }
    // query, key and value read the same input: with int8 execution they quantize it once per forward.
    std::optional<QuantizedLinear>& query = int8[static_cast<int>(EncoderLinear::kQuery)];
    std::optional<QuantizedLinear>& key = int8[static_cast<int>(EncoderLinear::kKey)];
    std::optional<QuantizedLinear>& value = int8[static_cast<int>(EncoderLinear::kValue)];
    if (query && key && value) BF_RETURN_IF_ERROR(QuantizedLinear::share_input({&*query, &*key, &*value}));
    for (const EncoderLinearInfo& slot : kEncoderLinears) {
      std::optional<QuantizedLinear>& q = int8[static_cast<int>(slot.linear)];
      if (q) slot.module(layer).set_forward_override(as_forward_override(std::move(*q)));
    }
  }
  for (const auto& [name, qw] : quantized) {
    if (installed.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(quantized_execution_name(execution),
                                                     " execution of the Linear inputs covers the six encoder Linears "
                                                     "per layer, but ", name, " is quantized too"));
    }
  }
  return absl::OkStatus();
}

// The quantized weights of `state` by bertforge name.
std::map<std::string, const QuantizedWeight*> quantized_by_name(const QuantizedStateDict& state,
                                                                const HfCheckpointLayout& layout) {
  std::map<std::string, const QuantizedWeight*> quantized;
  for (const auto& [name, qw] : state.quantized) {
    const StateDict renamed = to_bertforge_names({{name, Tensor()}}, layout);
    quantized[renamed.empty() ? name : renamed.front().first] = &qw;
  }
  return quantized;
}

// The activation quantization of `spec` on the model built from `state`: the hook (all_taps) and/or the Linear
// overrides (int8 execution, or the linear_inputs scope), as quantized_model.h describes.
absl::Status install_activation_quantization(QuantizedBert& bert, const QuantizedStateDict& state,
                                             const HfCheckpointLayout& layout, const ActivationQuantSpec& spec,
                                             const QuantizedBuildOptions& options) {
  BertForMaskedLM& model = *bert.model;
  const int64_t L = model.config().num_hidden_layers;
  const bool int8 = options.execution == QuantizedExecution::kInt8;
  if (int8 && (!spec.quantized() || spec.bits > 8)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int8 execution needs activations quantized to at most 8 bits, the model has ",
        spec.quantized() ? absl::StrCat(spec.bits, "-bit") : "FP", " activations"));
  }
  if (!spec.quantized()) return absl::OkStatus();
  if (spec.has_ranges()) {
    BF_ASSIGN_OR_RETURN(ActivationQuantizer quantizer, ActivationQuantizer::create(
                                                           spec.calibration, L,
                                                           ActivationQuantOptions{spec.bits, spec.exclude}));
    bert.activations = std::move(quantizer);
  }
  const ActivationQuantizer* ranges = bert.activations.has_value() ? &*bert.activations : nullptr;
  if (spec.scope == ActivationScope::kAllTaps && !int8) {
    model.set_hook(ranges->hook());
    return absl::OkStatus();
  }
  BF_RETURN_IF_ERROR(install_linear_overrides(model, quantized_by_name(state, layout), ranges, spec.bits,
                                              options.execution));
  if (spec.scope == ActivationScope::kLinearInputs || !options.fake_quant_taps) return absl::OkStatus();
  // int8 execution of the all_taps scope: the other tap points are fake-quantized by the hook.
  ActivationQuantOptions hook_options{spec.bits, spec.exclude};
  hook_options.exclude.push_back(tap_point_name(TapPoint::kContext));
  hook_options.exclude.push_back(tap_point_name(TapPoint::kGelu));
  BF_ASSIGN_OR_RETURN(const ActivationQuantizer hook, ActivationQuantizer::create(spec.calibration, L, hook_options));
  model.set_hook(hook.hook());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuantizedBert> build_quantized_bert(const QuantizedStateDict& state, const BertConfig& config,
                                                   const ActivationQuantSpec& spec,
                                                   const QuantizedBuildOptions& options) {
  BF_RETURN_IF_ERROR(spec.validate());
  StateDict tensors = state.fp;
  QuantizedBert bert;
  for (const auto& [name, qw] : state.quantized) {
    tensors.emplace_back(name, dequantize(qw));  // the int8 execution path replaces this (file comment)
    bert.weight_schemes.emplace_back(name, qw.scheme);
  }
  // The multiplies left by folding are not parameters: they go to the layers (quant/channel_fold.h).
  BF_ASSIGN_OR_RETURN(const std::vector<BertLayer::FoldedScales> folded, take_folded_scales(tensors, config));
  BF_ASSIGN_OR_RETURN(const HfCheckpointLayout layout, detect_hf_layout(tensors));
  bert.model = std::make_unique<BertForMaskedLM>(config, /*init_seed=*/0, layout.head());
  BF_RETURN_IF_ERROR(bert.model->load_state_dict(to_bertforge_names(tensors, layout), LoadMode::kStrict));
  install_folded_scales(*bert.model, folded);
  bert.folded_layers = folded_layer_count(*bert.model);
  bert.model->eval();
  BF_RETURN_IF_ERROR(install_activation_quantization(bert, state, layout, spec, options));
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
