// quant/migration.h — moving activation outliers into the weights before W8A8: per-input-channel scales s folded
// exactly into the FP model (quant/channel_fold.h), so that each Linear's input x diag(1/s) has tamer channels and
// its weight W diag(s) absorbs them.
//
// Methods (MigrationOptions::method):
//   smooth  SmoothQuant (Xiao et al.), for all four groups of every layer (query/key/value, attention.output.dense,
//           intermediate.dense, output.dense): s_j = max|X_j|^alpha / max|W_:,j|^(1 - alpha), X_j input channel j
//           over the calibration tokens (real tokens only), W the group's weights stacked by rows; s_j = 1 where
//           either maximum is 0, and s is clamped to [1e-5, 1e5]. alpha is MigrationOptions::alpha, or, with
//           search_alpha, chosen per group on the grid {0, 1/G, ..., 1} plus "no migration" by the output error
//           below (so a group is never made worse on the calibration sample than leaving it alone).
//   gamma   Outlier Suppression's gamma migration (Wei et al., seed 003): the LayerNorm's gamma, which carries the
//           outlier channels, leaves the LayerNorm (its output becomes x_hat + beta / gamma) and goes into the
//           following Linears' input columns and the residual: s = gamma for the LayerNorm-fed groups (query/key/
//           value after the embeddings' or previous layer's output LayerNorm, intermediate.dense after the attention
//           LayerNorm); s_j = 1 where gamma_j = 0. Needs no calibration data, but the report uses it.
//
// Output error (report, and the alpha search), on the reservoir sample X (n,K) of the group's input and its
// stacked weight W (N,K): E(s) = sum ((Q_a(X diag(1/s)) Q_w(W diag(s))^T - X W^T)^2) / (n N), with Q_w the weight
// scheme's fake quantization and Q_a the activations' (asymmetric, min-max of the sample per tensor, or per token).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "models/bert.h"
#include "quant/channel_fold.h"
#include "quant/group_statistics.h"
#include "quant/quant_scheme.h"
#include "quant/quantized_model.h"

namespace bertforge::quant {

enum class MigrationMethod { kNone, kSmooth, kGamma };
const char* migration_method_name(MigrationMethod method);  // "none", "smooth", "gamma"
absl::StatusOr<MigrationMethod> parse_migration_method(absl::string_view name);

struct MigrationOptions {
  MigrationMethod method = MigrationMethod::kNone;
  double alpha = 0.5;         // smooth: the migration strength, in [0, 1]
  bool search_alpha = false;  // smooth: choose alpha per group by the output error (file comment)
  int alpha_grid = 10;        // G >= 1: alphas i / G, i = 0..G
  // The quantization the output error models: the weights' scheme and the activations' bits and granularity.
  QuantScheme weights = int8_per_channel();
  int activation_bits = 8;
  ActivationGranularity granularity = ActivationGranularity::kPerTensor;
  int64_t max_samples = 2048;  // calibration rows kept per group input
  uint64_t seed = 0;           // of the reservoir samples

  // InvalidArgument naming the bad field.
  absl::Status validate() const;
};

struct MigrationGroupReport {
  int64_t layer = 0;
  FoldGroup group = FoldGroup::kQkv;
  bool migrated = false;  // a scale was folded
  double alpha = 0;       // smooth: the alpha used (when migrated)
  // max_j max|X_j| of the input, and its ratio to the median channel's max|X_j|, before and after.
  float input_max_before = 0, input_max_after = 0;
  float outlier_ratio_before = 0, outlier_ratio_after = 0;
  double error_before = 0, error_after = 0;  // output error E (file comment), unscaled and as folded
};

struct MigrationResult {
  std::vector<LayerInputScales> scales;      // per layer: what was folded
  std::vector<MigrationGroupReport> groups;  // per layer and group, in forward order
  int64_t calibration_tokens = 0;
};

// Computes the scales of options.method on the batches of `next_batch` (at least one with a real token) and folds
// them into `model` in place. kNone folds nothing (the report still describes the inputs).
absl::StatusOr<MigrationResult> migrate_outliers(BertForMaskedLM& model, const CalibrationBatchSource& next_batch,
                                                 const MigrationOptions& options);

}  // namespace bertforge::quant
