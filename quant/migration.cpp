// quant/migration.cpp — SmoothQuant-style and gamma migration of activation outliers (see migration.h).
#include "quant/migration.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "quant/activation_quant.h"
#include "quant/weight_quant.h"

namespace bertforge::quant {
namespace {

// max_j |W[:, j]| of W (N,K) -> (K).
std::vector<float> column_max_abs(const Tensor& W) {
  const int64_t N = W.size(0), K = W.size(1);
  const std::vector<float> w = W.to_float_vector();
  std::vector<float> out(static_cast<size_t>(K), 0.0f);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) out[k] = std::max(out[k], std::fabs(w[n * K + k]));
  }
  return out;
}

// SmoothQuant's s_j = x_j^alpha / w_j^(1 - alpha), 1 where either is 0, clamped to [1e-5, 1e5].
Tensor smooth_scale(const std::vector<float>& x_max, const std::vector<float>& w_max, double alpha) {
  std::vector<float> s(x_max.size(), 1.0f);
  for (size_t j = 0; j < s.size(); ++j) {
    if (x_max[j] <= 0.0f || w_max[j] <= 0.0f) continue;
    const double v = std::pow(double{x_max[j]}, alpha) / std::pow(double{w_max[j]}, 1.0 - alpha);
    s[j] = static_cast<float>(std::clamp(v, 1e-5, 1e5));
  }
  return Tensor::from_vector(s, {static_cast<int64_t>(s.size())});
}

// The LayerNorm gamma that feeds `group` of layer l (gamma migration), or undefined for the other groups.
Tensor feeding_gamma(const BertForMaskedLM& model, int64_t l, FoldGroup group) {
  if (group == FoldGroup::kQkv) {
    return l == 0 ? model.embeddings.layer_norm.weight : model.layers[static_cast<size_t>(l - 1)]->output_layer_norm.weight;
  }
  if (group == FoldGroup::kFfnInput) return model.layers[static_cast<size_t>(l)]->attention_output_layer_norm.weight;
  return Tensor();
}

// s = gamma, with 1 where gamma is 0.
Tensor gamma_scale(const Tensor& gamma) {
  std::vector<float> s = gamma.to_float_vector();
  for (float& v : s) v = v == 0.0f ? 1.0f : v;
  return Tensor::from_vector(s, gamma.shape());
}

// The activation side of the output error: asymmetric fake quantization, per tensor (min-max of X) or per token.
Tensor quantize_sample(const Tensor& X, const MigrationOptions& o) {
  if (o.granularity == ActivationGranularity::kPerToken) return fake_quantize_per_token(X, o.activation_bits);
  const std::vector<float> v = X.to_float_vector();
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  const ActivationRange range{std::min(0.0f, *lo), std::max(0.0f, *hi)};
  return fake_quantize_activation(X, ActivationQuantParams::from_range(range, o.activation_bits));
}

// E(s) of migration.h on X (n,K), W (N,K), reference Y = X W^T; s undefined: 1.
double output_error(const Tensor& X, const Tensor& W, const Tensor& Y, const Tensor& s, const MigrationOptions& o) {
  const Tensor Xs = s.defined() ? mul(X, reciprocal(s)) : X;
  const Tensor Ws = s.defined() ? mul(W, s) : W;
  const Tensor E = sub(matmul(quantize_sample(Xs, o), fake_quantize_weight(Ws, o.weights), false, true), Y);
  double total = 0;
  for (float e : E.to_float_vector()) total += double{e} * e;
  return total / static_cast<double>(X.size(0) * W.size(0));
}

// (max_j m_j, max_j m_j / median_j m_j) of the channel maxima m (each divided by |s_j| when s is defined).
std::pair<float, float> outlier_figures(std::vector<float> m, const Tensor& s) {
  if (s.defined()) {
    const std::vector<float> sv = s.to_float_vector();
    for (size_t j = 0; j < m.size(); ++j) m[j] /= std::fabs(sv[j]);
  }
  const float top = *std::max_element(m.begin(), m.end());
  std::nth_element(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(m.size() / 2), m.end());
  const float median = m[m.size() / 2];
  return {top, median > 0.0f ? top / median : 0.0f};
}

}  // namespace

const char* migration_method_name(MigrationMethod method) {
  switch (method) {
    case MigrationMethod::kNone: return "none";
    case MigrationMethod::kSmooth: return "smooth";
    case MigrationMethod::kGamma: return "gamma";
  }
  return "?";
}

absl::StatusOr<MigrationMethod> parse_migration_method(absl::string_view name) {
  for (MigrationMethod m : {MigrationMethod::kNone, MigrationMethod::kSmooth, MigrationMethod::kGamma}) {
    if (name == migration_method_name(m)) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat("migration must be none, smooth or gamma, got \"", name, "\""));
}

absl::Status MigrationOptions::validate() const {
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("migration alpha must be in [0, 1], got ", alpha));
  }
  if (alpha_grid < 1) return absl::InvalidArgumentError(absl::StrCat("migration alpha grid must be >= 1, got ", alpha_grid));
  BF_RETURN_IF_ERROR(weights.validate());
  if (activation_bits < 2 || activation_bits > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("migration models activations of 2..8 bits, got ", activation_bits));
  }
  if (max_samples < 1) {
    return absl::InvalidArgumentError(absl::StrCat("migration max_samples must be >= 1, got ", max_samples));
  }
  return absl::OkStatus();
}

absl::StatusOr<MigrationResult> migrate_outliers(BertForMaskedLM& model, const CalibrationBatchSource& next_batch,
                                                 const MigrationOptions& options) {
  BF_RETURN_IF_ERROR(options.validate());
  autograd::NoGradGuard no_grad;
  absl::StatusOr<GroupInputStatistics> stats =
      collect_group_input_statistics(model, next_batch, options.max_samples, options.seed);
  if (!stats.ok()) {
    return absl::Status(stats.status().code(), absl::StrCat("migration: ", stats.status().message()));
  }
  const int64_t L = model.config().num_hidden_layers;
  MigrationResult result;
  result.calibration_tokens = stats->tokens;
  result.scales.resize(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    for (FoldGroup group : kFoldGroups) {
      const AwqInputStatistics& input = stats->at(l, group);
      const Tensor X = input.samples(), W = group_weight(model, l, group);
      const Tensor Y = matmul(X, W, false, true);
      MigrationGroupReport r;
      r.layer = l;
      r.group = group;
      r.error_before = output_error(X, W, Y, Tensor(), options);
      r.error_after = r.error_before;
      Tensor chosen;
      if (options.method == MigrationMethod::kGamma) {
        const Tensor gamma = feeding_gamma(model, l, group);
        if (gamma.defined()) chosen = gamma_scale(gamma.to(Device::cpu()));
      } else if (options.method == MigrationMethod::kSmooth) {
        const std::vector<float> w_max = column_max_abs(W);
        if (!options.search_alpha) {
          chosen = smooth_scale(input.max_abs(), w_max, options.alpha);
          r.alpha = options.alpha;
        } else {
          for (int i = 0; i <= options.alpha_grid; ++i) {
            const double alpha = static_cast<double>(i) / options.alpha_grid;
            const Tensor s = smooth_scale(input.max_abs(), w_max, alpha);
            const double error = output_error(X, W, Y, s, options);
            if (error < r.error_after) {
              r.error_after = error;
              r.alpha = alpha;
              chosen = s;
            }
          }
        }
      }
      if (chosen.defined()) {
        r.migrated = true;
        r.error_after = output_error(X, W, Y, chosen, options);
        result.scales[static_cast<size_t>(l)].at(group) = chosen;
      }
      std::tie(r.input_max_before, r.outlier_ratio_before) = outlier_figures(input.max_abs(), Tensor());
      std::tie(r.input_max_after, r.outlier_ratio_after) = outlier_figures(input.max_abs(), chosen);
      result.groups.push_back(r);
    }
    stats->release(l, FoldGroup::kGeluOutput);
  }
  BF_RETURN_IF_ERROR(fold_input_scales(model, result.scales));
  return result;
}

}  // namespace bertforge::quant
