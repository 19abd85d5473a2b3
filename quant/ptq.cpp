// quant/ptq.cpp — post-training W8A8 quantization of BERT (see ptq.h).
#include "quant/ptq.h"

#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/check.h"
#include "models/encoder_linears.h"
#include "quant/channel_fold.h"
#include "quant/group_statistics.h"

namespace bertforge::quant {
namespace {

// Token-wise clipping of every Linear input of `model` (the weight-quantized model) on `batches`: replaces those
// sites' ranges in `table` and returns the reports.
absl::StatusOr<std::vector<ClippingReport>> clip_linear_inputs(BertForMaskedLM& model,
                                                               const std::vector<MlmBatch>& batches,
                                                               const PtqOptions& options,
                                                               ActivationRangeTable& table) {
  BF_ASSIGN_OR_RETURN(GroupInputStatistics stats, collect_group_input_statistics(model, vector_batches(batches),
                                                                                 options.clipping_samples,
                                                                                 options.seed));
  TokenwiseClippingOptions clipping = options.tokenwise;
  clipping.bits = options.activation_bits;
  std::vector<ClippingReport> reports;
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l) {
    for (FoldGroup group : kFoldGroups) {
      ClippingReport report;
      report.site = group_input_site(l, group).name();
      absl::StatusOr<TokenwiseClippingResult> clipped =
          tokenwise_clipping(stats.at(l, group).samples(), group_weight(model, l, group), clipping);
      if (!clipped.ok()) {
        return absl::Status(clipped.status().code(),
                            absl::StrCat("token-wise clipping of ", report.site, ": ", clipped.status().message()));
      }
      report.result = std::move(*clipped);
      for (auto& [name, range] : table.ranges) {
        if (name == report.site) range = report.result.range;
      }
      reports.push_back(std::move(report));
      stats.release(l, group);
    }
  }
  return reports;
}

}  // namespace

const char* activation_clipping_name(ActivationClipping clipping) {
  return clipping == ActivationClipping::kNone ? "none" : "tokenwise";
}

absl::StatusOr<ActivationClipping> parse_activation_clipping(absl::string_view name) {
  for (ActivationClipping c : {ActivationClipping::kNone, ActivationClipping::kTokenwise}) {
    if (name == activation_clipping_name(c)) return c;
  }
  return absl::InvalidArgumentError(absl::StrCat("clipping must be none or tokenwise, got \"", name, "\""));
}

absl::Status PtqOptions::validate() const {
  BF_RETURN_IF_ERROR(weights.validate());
  if (!weights.symmetric) {
    return absl::InvalidArgumentError(
        absl::StrCat("PTQ weights are symmetric (seed eq. 2); got the scheme ", weights.str()));
  }
  if (activation_bits != 0 && (activation_bits < 2 || activation_bits > 16)) {
    return absl::InvalidArgumentError(
        absl::StrCat("activation bits must be 0 (FP activations) or in [2, 16], got ", activation_bits));
  }
  ActivationQuantSpec spec;
  spec.bits = activation_bits;
  spec.exclude = exclude;
  spec.scope = scope;
  spec.granularity = granularity;
  BF_RETURN_IF_ERROR(spec.validate());
  if (clipping == ActivationClipping::kTokenwise) {
    if (scope != ActivationScope::kLinearInputs || !spec.has_ranges()) {
      return absl::InvalidArgumentError(
          "token-wise clipping chooses the static range of each Linear input: it needs quantized activations, the "
          "linear_inputs scope and per_tensor granularity");
    }
    if (activation_bits > 8) {
      return absl::InvalidArgumentError(
          absl::StrCat("token-wise clipping handles 2..8-bit activations, got ", activation_bits));
    }
    TokenwiseClippingOptions checked = tokenwise;
    checked.bits = activation_bits;
    BF_RETURN_IF_ERROR(checked.validate());
    if (clipping_samples < 1) {
      return absl::InvalidArgumentError(absl::StrCat("clipping_samples must be >= 1, got ", clipping_samples));
    }
  }
  if (spec.has_ranges()) {
    BF_RETURN_IF_ERROR(calibration.observer.validate());
    if (calibration.batches < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("calibration needs at least 1 batch, got ", calibration.batches));
    }
  }
  return absl::OkStatus();
}

bool is_ptq_weight(absl::string_view name) {
  const auto split = split_encoder_layer_name(name);
  if (!split) return false;
  absl::string_view under_layer = split->second;
  if (!absl::ConsumeSuffix(&under_layer, ".weight")) return false;
  for (const EncoderLinearInfo& linear : kEncoderLinears) {
    if (under_layer == linear.name) return true;
  }
  return false;
}

std::vector<std::string> ptq_weight_names(const BertForMaskedLM& model) {
  std::vector<std::string> names;
  for (const auto& [name, parameter] : model.named_parameters()) {
    if (is_ptq_weight(name)) names.push_back(name);
  }
  return names;
}

double sqnr_db(const Tensor& w, const Tensor& dequantized) {
  BF_CHECK(w.shape() == dequantized.shape(), "sqnr_db: shapes ", w.shape_str(), " and ", dequantized.shape_str(),
           " differ");
  const std::vector<float> a = w.to_float_vector(), b = dequantized.to_float_vector();
  double signal = 0.0, noise = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], e = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    signal += x * x;
    noise += e * e;
  }
  if (noise == 0.0) return std::numeric_limits<double>::infinity();
  if (signal == 0.0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

absl::StatusOr<PtqResult> quantize_ptq(const BertForMaskedLM& model, DataLoader& calibration_loader,
                                       const PtqOptions& options) {
  BF_RETURN_IF_ERROR(options.validate());
  PtqResult result;

  // (1) Weights.
  for (const auto& [name, tensor] : model.state_dict()) {
    if (!is_ptq_weight(name)) {
      result.state.fp.emplace_back(name, tensor);
      continue;
    }
    QuantizedWeight qw = quantize_weight(tensor, options.weights);
    result.weights.push_back({name, qw.rows, qw.cols, qw.scheme, sqnr_db(tensor, dequantize(qw))});
    result.state.quantized.emplace_back(name, std::move(qw));
  }
  if (result.state.quantized.empty()) {
    return absl::InvalidArgumentError("PTQ: the model has no encoder Linear weight to quantize");
  }
  for (auto& named : folded_scale_tensors(model)) result.state.fp.push_back(std::move(named));

  // (2) Activation ranges, on the model with quantized weights and FP activations.
  result.activations.bits = options.activation_bits;
  result.activations.exclude = options.exclude;
  result.activations.scope = options.scope;
  result.activations.granularity = options.granularity;
  if (!result.activations.has_ranges()) return result;
  BF_ASSIGN_OR_RETURN(QuantizedBert weight_only,
                      build_quantized_bert(result.state, model.config(), ActivationQuantSpec{}));
  CalibrationOptions calibration = options.calibration;
  calibration.observer.bits = options.activation_bits;
  std::vector<MlmBatch> batches;
  for (int64_t b = 0; b < calibration.batches; ++b) batches.push_back(calibration_loader.next());
  BF_ASSIGN_OR_RETURN(result.activations.calibration,
                      calibrate_activations(*weight_only.model, batches, calibration));
  if (options.clipping == ActivationClipping::kTokenwise) {
    BF_ASSIGN_OR_RETURN(result.clipping, clip_linear_inputs(*weight_only.model, batches, options,
                                                            result.activations.calibration));
  }

  // (3) Check now that the spec builds (exclusions name real tap points), not when the file is loaded.
  BF_RETURN_IF_ERROR(ActivationQuantizer::create(result.activations.calibration, model.config().num_hidden_layers,
                                                 ActivationQuantOptions{options.activation_bits, options.exclude})
                         .status());
  return result;
}

}  // namespace bertforge::quant
