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
// Two ways to execute it (QuantizedExecution), both a BertForMaskedLM, so train/evaluation.h's evaluate() gives the
// quantized perplexity and outlier metrics:
//   kFakeQuant  the dequantized weights and the ActivationQuantizer hook (quant/calibration.h): every tap point
//               that is not excluded is fake-quantized, every Linear runs in FP32.
//   kInt8       real integer execution of the six encoder Linears per layer (quant/quantized_linear.h, installed
//               with Linear::set_forward_override): each quantizes its input to uint8 with the calibrated
//               parameters of the tap point that feeds it and runs the int8 GEMM,
//                 query, key, value       <- the layer input: embeddings.layer_norm (layer 0, dropout is the
//                                            identity in eval), else layer.<i-1>.layer_output
//                 attention.output.dense  <- layer.<i>.context
//                 intermediate.dense      <- layer.<i>.attention_layer_norm
//                 output.dense            <- layer.<i>.gelu
//               query, key and value share the quantization of their common input (QuantizedLinear::share_input):
//               it is quantized once per forward, not three times.
//               With fake_quant_taps (the default) every other tap point is fake-quantized by the hook as in
//               kFakeQuant, so both compute the same math up to float rounding order (the int8 sums are exact;
//               the FP32 GEMM of fake-quantized operands rounds): the perplexities are comparable. The hook skips
//               context and gelu, whose only consumer is the int8 Linear that quantizes them itself (fake-quantizing
//               first would give the same codes: (q - z) s / s rounds back to q - z). The other Linear inputs are
//               fake-quantized by the hook because the residual branch also reads them, then re-quantized to the
//               same codes by the Linear. With fake_quant_taps false no hook is set: only the six Linears' inputs
//               are quantized (what an int8 deployment of these Linears computes; used for throughput).
//               Needs activations of at most 8 bits whose Linear-input points are not excluded (at most 7 bits
//               take the faster AVX2 kernel of quant/int8_gemm.h), and weights symmetric per
//               tensor or per channel with at most 8 bits; anything else is an InvalidArgument naming it.
//               The MLM head, embeddings, LayerNorms, attention matmuls and softmax stay FP32 in both modes.
//
// Activation scope (ActivationQuantSpec::scope):
//   all_taps       the seed's scheme (Quantizable Transformers' tables): every tap point that is not excluded is
//                  quantized, residual sums, LayerNorm outputs and softmax inputs included (as above).
//   linear_inputs  only the inputs of the six encoder Linears per layer are quantized, as int8 kernels execute
//                  them: residual sums, LayerNorm, softmax and GELU stay FP32. With fake quantization each of these
//                  Linears gets a forward override that fake-quantizes its input, then runs in FP32 with the
//                  dequantized weight; with int8 execution, QuantizedLinear. The residual branch sees the FP
//                  LayerNorm output, which all_taps cannot express (its hook replaces the tap for every reader).
// Activation granularity (ActivationQuantSpec::granularity), for linear_inputs:
//   per_tensor     static: one calibrated range per Linear input (the spec's ranges; a range method such as
//                  token-wise clipping may have chosen it)
//   per_token      dynamic: each token (row) is quantized with its own min/max, computed at run time
//                  (quant/activation_quant.h fake_quantize_per_token; the int8 GEMM's per-row epilogue); the spec
//                  then holds no ranges.
//
// Folded checkpoints (quant/channel_fold.h: migration, AWQ) carry the per-channel multiplies their folding left
// ("bert.encoder.layer.<i>.folded.*", or AWQ's earlier "...output.dense.awq_input_scale"); the loader takes them
// out before the strict load and installs them on the model's layers, in every execution mode.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/json.h"
#include "models/bert.h"
#include "models/bert_config.h"
#include "quant/calibration.h"
#include "quant/quantized_checkpoint.h"

namespace bertforge::quant {

inline constexpr int kActivationSpecFormatVersion = 1;

enum class ActivationScope { kAllTaps, kLinearInputs };
enum class ActivationGranularity { kPerTensor, kPerToken };
const char* activation_scope_name(ActivationScope scope);                    // "all_taps", "linear_inputs"
const char* activation_granularity_name(ActivationGranularity granularity);  // "per_tensor", "per_token"
absl::StatusOr<ActivationScope> parse_activation_scope(absl::string_view name);
absl::StatusOr<ActivationGranularity> parse_activation_granularity(absl::string_view name);

// How the activations of a quantized model are quantized: the sibling JSON above, plus "scope" and "granularity"
// (absent in older files: all_taps, per_tensor).
struct ActivationQuantSpec {
  int bits = 0;                       // 0: FP activations, else 2..16
  std::vector<std::string> exclude;   // tap points left FP (ActivationQuantOptions::exclude); all_taps only
  ActivationScope scope = ActivationScope::kAllTaps;
  ActivationGranularity granularity = ActivationGranularity::kPerTensor;  // per_token needs linear_inputs
  ActivationRangeTable calibration;   // the calibrated ranges; unused when bits == 0 or per_token

  // Whether the spec holds calibrated ranges (quantized, per tensor).
  bool has_ranges() const { return quantized() && granularity == ActivationGranularity::kPerTensor; }
  // InvalidArgument for a combination that cannot run (per_token with all_taps, exclude with linear_inputs,
  // bits outside 0 or [2, 16]).
  absl::Status validate() const;

  bool quantized() const { return bits != 0; }
  Json to_json() const;
  static absl::StatusOr<ActivationQuantSpec> from_json(const Json& json);
};

// "model.safetensors" -> "model.activations.json" (any other name gets ".activations.json" appended).
std::string activation_spec_path(const std::string& model_path);

// Whether the safetensors file at `path` holds quantized tensors, read from its header alone (the
// "bertforge.quant" metadata). Errors for a file that cannot be read or is not safetensors.
absl::StatusOr<bool> is_quantized_checkpoint(const std::string& path);

enum class QuantizedExecution { kFakeQuant, kInt8 };
const char* quantized_execution_name(QuantizedExecution execution);  // "fake-quant", "int8"

struct QuantizedBuildOptions {
  QuantizedExecution execution = QuantizedExecution::kFakeQuant;
  bool fake_quant_taps = true;  // kInt8 only: fake-quantize the other tap points (see the file comment)
};

// The model and what it was built from.
struct QuantizedBert {
  std::unique_ptr<BertForMaskedLM> model;         // eval mode; dequantized weights (their int8 overrides in
                                                  // kInt8); the activation hook set
  std::optional<ActivationQuantizer> activations;  // absent when activations stay FP
  std::vector<std::pair<std::string, QuantScheme>> weight_schemes;  // per quantized weight, in file order
  int64_t folded_layers = 0;  // layers carrying folded per-channel multiplies (quant/channel_fold.h)

  // "weights int8 symmetric per_tensor (72 tensors), activations 8-bit asymmetric per tensor (minmax, 16
  // batches)": for tables and logs.
  std::string describe(const ActivationQuantSpec& spec) const;
};

// Builds the model of `config` from `state` (quantized weights dequantized, FP tensors as they are; the MLM head
// is built when state has cls.predictions.*) and installs the activation hook of `spec`; with kInt8 the six
// encoder Linears of every layer also get their int8 execution. Every parameter must be present (strict load).
absl::StatusOr<QuantizedBert> build_quantized_bert(const QuantizedStateDict& state, const BertConfig& config,
                                                   const ActivationQuantSpec& spec,
                                                   const QuantizedBuildOptions& options = {});

// Writes model_path (the weights) and activation_spec_path(model_path), each atomically.
absl::Status save_quantized_bert(const std::string& model_path, const QuantizedStateDict& state,
                                 const ActivationQuantSpec& spec);

struct LoadedQuantizedBert {
  QuantizedBert bert;
  ActivationQuantSpec spec;
};
// Reads both files (load_quantized_checkpoint's checks, then the spec's) and builds the model.
absl::StatusOr<LoadedQuantizedBert> load_quantized_bert(const std::string& model_path, const BertConfig& config,
                                                        const QuantizedBuildOptions& options = {});

}  // namespace bertforge::quant
