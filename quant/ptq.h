// quant/ptq.h — post-training quantization of BERT, W8A8 as in the seed paper (Quantizable Transformers' setup):
// symmetric weights, asymmetric activations with calibrated ranges at every tap point, the MLM head in FP.
//
//   PtqResult ptq = *quantize_ptq(fp_model, calibration_loader, options);
//   QuantizedBert q = *build_quantized_bert(ptq.state, config, ptq.activations);   // quant/quantized_model.h
//   evaluate(*q.model, validation_loader);                                         // W8A8 perplexity + outliers
//   save_quantized_bert(path, ptq.state, ptq.activations);
//
// What is quantized. Per encoder layer the six Linear weights: attention.self.{query,key,value}, attention.output.
// dense, intermediate.dense, output.dense (ptq_weight_names). Everything else stays FP: biases, LayerNorms,
// embeddings (their outputs are quantized at embeddings.sum / embeddings.layer_norm instead), the gated variant's
// small per-head gate, and the whole MLM head, transform dense included: the seed keeps the decoder FP, and the
// head has no tap points (its input and the transform's output are not quantized), so quantizing only the
// transform's weight would be a scheme the seed does not describe.
//
// Steps: (1) every chosen weight -> quantize_weight (quant/weight_quant.h) with the weight scheme, and its SQNR;
// (2) a model with those weights dequantized is calibrated (quant/calibration.h) on the loader's next
// `calibration.batches` batches, activations in FP, so the ranges are those the weight-quantized model produces;
// (3) the ranges and activation bits form the ActivationQuantSpec. The input model is not modified. A model with
// folded channel scales (quant/channel_fold.h, e.g. after quant/migration.h) keeps them: they are written with
// the FP tensors. Per-token activations (linear_inputs scope) need no calibration: their ranges are the tokens'.
// With token-wise clipping, the ranges of the Linear inputs (embeddings.layer_norm, layer_output, context,
// attention_layer_norm, gelu) are then chosen by quant/tokenwise_clipping.h on a reservoir sample of
// clipping_samples real tokens of the same calibration batches (quantiles from that sample), with the
// dequantized weights of the Linears that read each input; the observer's ranges stay for the other tap points.
//
// SQNR of a weight W and its dequantized W' (dB): 10 log10(sum W^2 / sum (W - W')^2); +inf when W' == W.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "models/bert.h"
#include "quant/calibration.h"
#include "quant/quant_scheme.h"
#include "quant/quantized_checkpoint.h"
#include "quant/quantized_model.h"
#include "quant/tokenwise_clipping.h"
#include "train/data_loader.h"

namespace bertforge::quant {

// The seed's weight scheme: 8-bit symmetric, per tensor (per_channel and per_group are options).
inline QuantScheme ptq_default_weight_scheme() { return {8, true, Granularity::kPerTensor, 128}; }

// How the static range of a Linear input is chosen: the calibration observer's, or seed 003's token-wise clipping
// (quant/tokenwise_clipping.h) on the input sample, against the output error of the Linears reading it.
enum class ActivationClipping { kNone, kTokenwise };
const char* activation_clipping_name(ActivationClipping clipping);  // "none", "tokenwise"
absl::StatusOr<ActivationClipping> parse_activation_clipping(absl::string_view name);

struct PtqOptions {
  QuantScheme weights = ptq_default_weight_scheme();  // must be symmetric (the seed's eq. 2)
  int activation_bits = 8;                            // 0: activations stay FP (weight-only), else 2..16
  std::vector<std::string> exclude;                   // tap points left FP (ActivationQuantOptions::exclude)
  ActivationScope scope = ActivationScope::kAllTaps;  // which activations (quantized_model.h)
  ActivationGranularity granularity = ActivationGranularity::kPerTensor;  // per_token: no calibration runs
  ActivationClipping clipping = ActivationClipping::kNone;  // kTokenwise: linear_inputs scope, per_tensor
  TokenwiseClippingOptions tokenwise;                        // its settings; bits is set to activation_bits
  int64_t clipping_samples = 2048;                           // calibration tokens kept per Linear input
  uint64_t seed = 0;                                         // of those samples
  CalibrationOptions calibration;                     // observer and number of batches; observer.bits is set
                                                      // to activation_bits by quantize_ptq

  // InvalidArgument naming the bad field.
  absl::Status validate() const;
};

// Whether PTQ quantizes the parameter `name` (one of the six encoder Linear weights, see the file comment).
bool is_ptq_weight(absl::string_view name);
// Those parameters of `model`, in model order.
std::vector<std::string> ptq_weight_names(const BertForMaskedLM& model);

// 10 log10(sum w^2 / sum (w - dequantized)^2) over two F32 tensors of one shape; +inf for an exact copy,
// -inf for an all-zero w quantized with error (never happens with weight_quant.h).
double sqnr_db(const Tensor& w, const Tensor& dequantized);

struct WeightQuantReport {
  std::string name;  // "bert.encoder.layer.0.attention.self.query.weight"
  int64_t rows = 0, cols = 0;
  QuantScheme scheme;
  double sqnr_db = 0;
};

// Token-wise clipping of one Linear input (ActivationClipping::kTokenwise).
struct ClippingReport {
  std::string site;  // the tap site whose range it replaced: "layer.0.gelu", ...
  TokenwiseClippingResult result;
};

struct PtqResult {
  QuantizedStateDict state;            // the quantized weights + every other parameter in FP
  ActivationQuantSpec activations;     // activation bits and calibrated ranges
  std::vector<WeightQuantReport> weights;  // one per quantized weight, in model order
  std::vector<ClippingReport> clipping;    // per Linear input, with kTokenwise
};

// Quantizes `model` (not modified; the FP tensors of the result share its storage) as the file comment
// describes. Calibration takes the next options.calibration.batches batches of `calibration_loader` (which
// advances); with activation_bits 0 it does not run.
absl::StatusOr<PtqResult> quantize_ptq(const BertForMaskedLM& model, DataLoader& calibration_loader,
                                       const PtqOptions& options);

}  // namespace bertforge::quant
