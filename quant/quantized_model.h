// quant/quantized_model.h — a BERT that evaluates as its quantized checkpoint computes: weights dequantized from
// their codes, activations fake-quantized at every tap point (W8A8 and friends, fake quantization).
//
// On disk a quantized model is two files side by side:
//   model.safetensors          the weights (quant/quantized_checkpoint.h): encoder Linear weights as codes + scales
//                              with their schemes in __metadata__["bertforge.quant"], everything else FP
//   model.activations.json     how activations are quantized (the name: the model file's with ".safetensors"
//                              replaced by ".activations.json"):
//                                {"format_version": 1, "activation_bits": 8, "exclude": [...],
//                                 "calibration": {"observer": "minmax", "batches": 16, "ranges": {...}}}
//                              ("calibration" is absent when activation_bits is 0: activations stay FP)
// The activation ranges live in a sibling JSON rather than in the safetensors metadata so that the weight file
// stays exactly what quant/quantized_checkpoint.h reads and writes; a quantized checkpoint without its sibling is
// an error (a model silently evaluated with FP activations would report the wrong scheme). config.json sits
// beside both, as for any checkpoint (train/checkpoint_paths.h).
//
// Evaluation today is fake quantization: BertForMaskedLM with the dequantized weights and the ActivationQuantizer
// hook (quant/calibration.h) set on it, so train/evaluation.h's evaluate() gives the quantized perplexity and
// outlier metrics. Real integer execution (quant/int8_gemm.h: prepacked int8_codes + the activation parameters of
// each Linear's input tap point) will plug in at build_quantized_bert, replacing the dequantized Linears.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/json.h"
#include "models/bert.h"
#include "models/bert_config.h"
#include "quant/calibration.h"
#include "quant/quantized_checkpoint.h"

namespace bertforge::quant {

inline constexpr int kActivationSpecFormatVersion = 1;

// How the activations of a quantized model are quantized: the sibling JSON above.
struct ActivationQuantSpec {
  int bits = 0;                       // 0: FP activations, else 2..16
  std::vector<std::string> exclude;   // tap points left FP (ActivationQuantOptions::exclude)
  ActivationRangeTable calibration;   // the calibrated ranges; unused when bits == 0

  bool quantized() const { return bits != 0; }
  Json to_json() const;
  static absl::StatusOr<ActivationQuantSpec> from_json(const Json& json);
};

// "model.safetensors" -> "model.activations.json" (any other name gets ".activations.json" appended).
std::string activation_spec_path(const std::string& model_path);

// Whether the safetensors file at `path` holds quantized tensors, read from its header alone (the
// "bertforge.quant" metadata). Errors for a file that cannot be read or is not safetensors.
absl::StatusOr<bool> is_quantized_checkpoint(const std::string& path);

// The model and what it was built from.
struct QuantizedBert {
  std::unique_ptr<BertForMaskedLM> model;         // eval mode; dequantized weights; the activation hook set
  std::optional<ActivationQuantizer> activations;  // absent when activations stay FP
  std::vector<std::pair<std::string, QuantScheme>> weight_schemes;  // per quantized weight, in file order

  // "weights int8 symmetric per_tensor (72 tensors), activations 8-bit asymmetric per tensor (minmax, 16
  // batches)": for tables and logs.
  std::string describe(const ActivationQuantSpec& spec) const;
};

// Builds the model of `config` from `state` (quantized weights dequantized, FP tensors as they are; the MLM head
// is built when state has cls.predictions.*) and installs the activation hook of `spec`. Every parameter must
// be present (strict load).
absl::StatusOr<QuantizedBert> build_quantized_bert(const QuantizedStateDict& state, const BertConfig& config,
                                                   const ActivationQuantSpec& spec);

// Writes model_path (the weights) and activation_spec_path(model_path), each atomically.
absl::Status save_quantized_bert(const std::string& model_path, const QuantizedStateDict& state,
                                 const ActivationQuantSpec& spec);

struct LoadedQuantizedBert {
  QuantizedBert bert;
  ActivationQuantSpec spec;
};
// Reads both files (load_quantized_checkpoint's checks, then the spec's) and builds the model.
absl::StatusOr<LoadedQuantizedBert> load_quantized_bert(const std::string& model_path, const BertConfig& config);

}  // namespace bertforge::quant
