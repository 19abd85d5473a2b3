// quant/awq.h — AWQ (Lin et al., "AWQ: Activation-aware Weight Quantization") for BERT's encoder Linears:
// weight-only quantization (activations stay FP: "W4A16/W8A16", here 32-bit float activations), per input channel
// scales searched on calibration activations, folded exactly into the FP model, then a clipping search.
//
//   AwqResult awq = *quantize_awq(model, calibration_loader, options);
//   save_quantized_bert(path, awq.state, ActivationQuantSpec{});   // weight-only: activation_bits 0
//   QuantizedBert q = *load_quantized_bert(path, config);          // installs the folded multiplies
//
// The algorithm, per encoder layer, for a Linear y = x W^T + b with W (N,K) and scheme Q (per_channel/per_group):
//  1. Statistics (quant/awq_statistics.h): run the FP model (eval, no grad) on the calibration batches; at each
//     Linear's input tap point keep mean|x| per input channel (K) and a reservoir sample X (n,K) of real-token rows
//     (n <= max_samples; memory does not grow with the number of batches). All layers are observed in one pass of
//     the FP model (the paper's search also runs on FP inputs).
//  2. Scale search, per group of Linears that share an input (quant/channel_fold.h: query/key/value together,
//     then attention.output.dense, intermediate.dense, output.dense), W the group's weights stacked by rows:
//     for alpha in {0, 1/20, ..., 19/20}: s = max(mean|x|^alpha, 1e-4), s /= sqrt(max s * min s);
//     err(alpha) = sum_{rows, out channels} ((X diag(1/s)) (Q(W diag(s)) - W diag(s))^T)^2; keep the alpha of least
//     err (the first on ties). alpha = 0 gives s = 1, i.e. round-to-nearest, so the chosen err <= RTN's.
//  3. Folding, exact in FP, by quant/channel_fold.h: 1/s goes into the LayerNorm before query/key/value and
//     intermediate.dense (post-LN: the residual then multiplies its output back by s), into value's rows for
//     attention.output.dense, and into a multiply after GELU for output.dense (the paper's scaled activation).
//  4. Clipping search on the (scaled) weight: per output row n, ratio c in {1, ..., 0.5} (clip_grid values evenly
//     spaced, 1 first): e_n(c) = sum_rows ((X' (Q_c(W') - W')^T)[:, n])^2 with X', W' the scaled input and weight;
//     keep argmin_c e_n(c) per row (1 on ties). Rows are independent, so the total is <= the unclipped error.
//  5. Quantize W' with the chosen per-row clip ratios (quant/weight_quant.h quantize_weight).
// Hence per group: awq_mse <= scaled_mse <= rtn_mse on the calibration sample (exact: the same computations);
// the per-Linear figures of the report are that group's rows. MSE here is per output element: err / (n N).
//
// The result is a QuantizedStateDict like PTQ's: the six encoder Linear weights per layer quantized
// (ptq.h's is_ptq_weight), everything else FP (LayerNorms and value biases folded), plus the per-channel multiplies
// the fold leaves (channel_fold.h's "bert.encoder.layer.<i>.folded.*" tensors), which quant/quantized_model.h's
// loader installs on the model.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "models/bert.h"
#include "models/module.h"
#include "quant/channel_fold.h"
#include "quant/group_statistics.h"
#include "quant/quant_scheme.h"
#include "quant/quantized_checkpoint.h"
#include "train/data_loader.h"

namespace bertforge::quant {

struct AwqOptions {
  // AWQ's INT4-g128 with zero points by default; bits 2..8, per_channel or per_group (clip ratios are per row).
  QuantScheme weights = int4_per_group(128, /*symmetric=*/false);
  int64_t calibration_batches = 16;  // the DataLoader overload takes this many batches
  int64_t max_samples = 4096;        // rows (tokens) kept per Linear input for the MSE searches
  int scale_grid = 20;               // alphas i / scale_grid, i = 0 .. scale_grid - 1
  int clip_grid = 20;                // ratios 1 - (1 - min_clip) i / (clip_grid - 1), i = 0 .. clip_grid - 1
  float min_clip = 0.5f;             // in (0, 1]
  bool search_scales = true;         // false: clip search only (an ablation)
  uint64_t seed = 0;                 // of the reservoir samples

  // InvalidArgument naming the bad field.
  absl::Status validate() const;
};

struct AwqLinearReport {
  std::string name;  // "bert.encoder.layer.0.attention.output.dense.weight"
  int64_t rows = 0, cols = 0;
  QuantScheme scheme;
  FoldGroup group = FoldGroup::kQkv;         // the Linears sharing its input (channel_fold.h)
  double alpha = 0;                          // the group's chosen alpha (0: unscaled)
  float clip_min = 1, clip_mean = 1, clip_max = 1;  // over the rows' chosen clip ratios
  double rtn_mse = 0;     // round-to-nearest, no clip
  double scaled_mse = 0;  // after the scale search, before clipping
  double awq_mse = 0;     // after scaling and clipping: what the checkpoint holds
  int64_t samples = 0;    // calibration rows the MSEs are over
};

struct AwqResult {
  QuantizedStateDict state;            // quantized folded weights, FP rest, the folded multiplies
  std::vector<LayerInputScales> scales;  // per layer; undefined where the group's alpha is 0
  std::vector<AwqLinearReport> linears;  // per quantized weight, in model order
  int64_t calibration_tokens = 0;      // real tokens observed (per Linear input)
};


// Runs AWQ on `model` (its parameters are not modified; its hook and training mode are restored afterwards) with
// the batches of `next_batch` (at least one). FailedPrecondition when no real token was seen.
absl::StatusOr<AwqResult> quantize_awq(BertForMaskedLM& model, const CalibrationBatchSource& next_batch,
                                       const AwqOptions& options);
// The same on the next options.calibration_batches batches of `loader` (which advances).
absl::StatusOr<AwqResult> quantize_awq(BertForMaskedLM& model, DataLoader& loader, const AwqOptions& options);

// Round-to-nearest baseline: every is_ptq_weight parameter of `model` quantized with `scheme`, no clipping, the
// rest FP.
QuantizedStateDict quantize_rtn(const BertForMaskedLM& model, const QuantScheme& scheme);

// sum_i ((X (Wq - W)^T)[i][n])^2 for each output row n: X (n,K), W and Wq (N,K), all F32 -> (N), in double.
std::vector<double> awq_output_sq_error(const Tensor& X, const Tensor& W, const Tensor& Wq);

}  // namespace bertforge::quant
