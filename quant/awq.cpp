// quant/awq.cpp — AWQ: statistics, scale search, exact folding, clip search (see awq.h for the algorithm).
#include "quant/awq.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "quant/ptq.h"
#include "quant/weight_quant.h"

namespace bertforge::quant {
namespace {

Tensor vector_tensor(const std::vector<float>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

// s = max(mean^alpha, 1e-4) / sqrt(max * min) (awq.h step 2).
Tensor awq_scale(const std::vector<float>& mean_abs, double alpha) {
  std::vector<float> s(mean_abs.size());
  for (size_t k = 0; k < s.size(); ++k) {
    s[k] = std::max(static_cast<float>(std::pow(static_cast<double>(mean_abs[k]), alpha)), 1e-4f);
  }
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const float norm = std::sqrt(*hi * *lo);
  for (float& x : s) x /= norm;
  return vector_tensor(s);
}

std::vector<double> row_errors(const Tensor& X, const Tensor& W, const QuantScheme& scheme,
                               const std::vector<float>& clip) {
  return awq_output_sq_error(X, W, fake_quantize_weight(W, scheme, clip));
}

double sum(const std::vector<double>& v) {
  double total = 0;
  for (double x : v) total += x;
  return total;
}

// What the search decides for one group of Linears (stacked by rows), and the group's report.
struct GroupPlan {
  Tensor scale;              // (K) input scale, undefined when unscaled
  std::vector<float> clip;   // (N) per-row ratios
  std::vector<double> rtn_err, scaled_err, awq_err;  // (N) per-row squared output errors
  double alpha = 0;
  int64_t samples = 0;
};

// Steps 4-5 for one group: X' (n,K) and W' (N,K) already scaled. Fills plan.clip and plan.awq_err.
void clip_search(const Tensor& Xs, const Tensor& Ws, const AwqOptions& options, GroupPlan& plan) {
  const int64_t N = Ws.size(0);
  plan.awq_err.assign(static_cast<size_t>(N), 0.0);
  plan.clip.assign(static_cast<size_t>(N), 1.0f);
  for (int i = 0; i < options.clip_grid; ++i) {
    const float c = options.clip_grid == 1
                        ? 1.0f
                        : 1.0f - (1.0f - options.min_clip) * static_cast<float>(i) / (options.clip_grid - 1);
    const std::vector<double> e = row_errors(Xs, Ws, options.weights, std::vector<float>(N, c));
    for (int64_t n = 0; n < N; ++n) {
      if (i == 0 || e[n] < plan.awq_err[n]) {
        plan.awq_err[n] = e[n];
        plan.clip[n] = c;
      }
    }
  }
}

// Steps 2, 4, 5 for one group with input statistics `stats` and stacked weight W (N,K).
GroupPlan plan_group(const Tensor& W, const AwqInputStatistics& stats, const AwqOptions& options) {
  GroupPlan plan;
  const Tensor X = stats.samples();
  plan.samples = X.size(0);
  const std::vector<float> mean = stats.mean_abs();

  // Step 2: alpha = 0 first (s = 1: RTN), then the rest of the grid.
  plan.rtn_err = row_errors(X, W, options.weights, {});
  plan.scaled_err = plan.rtn_err;
  double best_err = sum(plan.rtn_err);
  const int alphas = options.search_scales ? options.scale_grid : 1;
  for (int i = 1; i < alphas; ++i) {
    const double alpha = static_cast<double>(i) / options.scale_grid;
    const Tensor s = awq_scale(mean, alpha);
    std::vector<double> err = row_errors(mul(X, reciprocal(s)), mul(W, s), options.weights, {});
    if (sum(err) < best_err) {
      best_err = sum(err);
      plan.alpha = alpha;
      plan.scaled_err = std::move(err);
    }
  }
  if (plan.alpha == 0) {
    clip_search(X, W, options, plan);
  } else {
    plan.scale = awq_scale(mean, plan.alpha);
    clip_search(mul(X, reciprocal(plan.scale)), mul(W, plan.scale), options, plan);
  }
  return plan;
}

// Rows [from, to) of a per-row error vector, summed and divided into a per-element MSE.
double slice_mse(const std::vector<double>& err, int64_t from, int64_t to, int64_t samples) {
  double total = 0;
  for (int64_t n = from; n < to; ++n) total += err[static_cast<size_t>(n)];
  return total / static_cast<double>(samples * (to - from));
}

}  // namespace

absl::Status AwqOptions::validate() const {
  BF_RETURN_IF_ERROR(weights.validate());
  if (weights.granularity == Granularity::kPerTensor) {
    return absl::InvalidArgumentError(
        absl::StrCat("AWQ needs per_channel or per_group weights (its clip ratios are per row); got ", weights.str()));
  }
  if (calibration_batches < 1) {
    return absl::InvalidArgumentError(absl::StrCat("AWQ calibration needs at least 1 batch, got ", calibration_batches));
  }
  if (max_samples < 1) return absl::InvalidArgumentError(absl::StrCat("AWQ max_samples must be >= 1, got ", max_samples));
  if (scale_grid < 1 || clip_grid < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("AWQ grids need at least 1 point, got scale_grid ", scale_grid, " clip_grid ", clip_grid));
  }
  if (!(min_clip > 0.0f && min_clip <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("AWQ min_clip must be in (0, 1], got ", min_clip));
  }
  return absl::OkStatus();
}

std::vector<double> awq_output_sq_error(const Tensor& X, const Tensor& W, const Tensor& Wq) {
  BF_CHECK(X.dim() == 2 && W.dim() == 2 && W.shape() == Wq.shape() && X.size(1) == W.size(1),
           "awq_output_sq_error: X ", X.shape_str(), ", W ", W.shape_str(), ", Wq ", Wq.shape_str());
  const Tensor E = matmul(X, sub(Wq, W), /*trans_a=*/false, /*trans_b=*/true).contiguous();  // (n,N)
  const int64_t n = E.size(0), N = E.size(1);
  const float* e = E.data<float>();
  std::vector<double> err(static_cast<size_t>(N), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      const double v = e[i * N + j];
      err[j] += v * v;
    }
  }
  return err;
}

QuantizedStateDict quantize_rtn(const BertForMaskedLM& model, const QuantScheme& scheme) {
  QuantizedStateDict state;
  for (const auto& [name, tensor] : model.state_dict()) {
    if (is_ptq_weight(name)) {
      state.quantized.emplace_back(name, quantize_weight(tensor, scheme));
    } else {
      state.fp.emplace_back(name, tensor);
    }
  }
  return state;
}

absl::StatusOr<AwqResult> quantize_awq(BertForMaskedLM& model, const CalibrationBatchSource& next_batch,
                                       const AwqOptions& options) {
  BF_RETURN_IF_ERROR(options.validate());
  const int64_t L = model.config().num_hidden_layers;
  autograd::NoGradGuard no_grad;

  // Step 1: statistics of every group input, one pass of the FP model.
  absl::StatusOr<GroupInputStatistics> stats =
      collect_group_input_statistics(model, next_batch, options.max_samples, options.seed);
  if (!stats.ok()) return absl::Status(stats.status().code(), absl::StrCat("AWQ: ", stats.status().message()));
  AwqResult result;
  result.calibration_tokens = stats->tokens;

  // Steps 2, 4, 5 per group; the scales are collected for step 3.
  result.scales.resize(static_cast<size_t>(L));
  std::map<std::string, std::vector<float>> clips;  // by weight name
  for (int64_t l = 0; l < L; ++l) {
    for (FoldGroup group : kFoldGroups) {
      std::vector<std::string> names;
      for (const EncoderLinearInfo& linear : fold_group_linears(group)) names.push_back(linear.weight_name(l));
      const Tensor W = group_weight(model, l, group);  // (N of every Linear, K)
      const GroupPlan plan = plan_group(W, stats->at(l, group), options);
      if (plan.alpha != 0) result.scales[static_cast<size_t>(l)].at(group) = plan.scale;
      int64_t row = 0;
      for (size_t i = 0; i < names.size(); ++i) {
        const int64_t rows = W.size(0) / static_cast<int64_t>(names.size()), end = row + rows;
        AwqLinearReport r;
        r.name = names[i];
        r.rows = rows;
        r.cols = W.size(1);
        r.scheme = options.weights;
        r.group = group;
        r.alpha = plan.alpha;
        const auto first = plan.clip.begin() + row, last = plan.clip.begin() + end;
        r.clip_min = *std::min_element(first, last);
        r.clip_max = *std::max_element(first, last);
        r.clip_mean = static_cast<float>(std::accumulate(first, last, 0.0) / static_cast<double>(rows));
        r.rtn_mse = slice_mse(plan.rtn_err, row, end, plan.samples);
        r.scaled_mse = slice_mse(plan.scaled_err, row, end, plan.samples);
        r.awq_mse = slice_mse(plan.awq_err, row, end, plan.samples);
        r.samples = plan.samples;
        clips[names[i]] = std::vector<float>(first, last);
        result.linears.push_back(std::move(r));
        row = end;
      }
    }
    stats->release(l, FoldGroup::kGeluOutput);  // the largest samples; no longer needed
  }

  // Step 3 (fold, into a copy), then step 5 (quantize with the chosen clips), in model order.
  const std::unique_ptr<BertForMaskedLM> folded = clone_bert(model);
  BF_RETURN_IF_ERROR(fold_input_scales(*folded, result.scales));
  for (const auto& [name, tensor] : folded->state_dict()) {
    const auto clip = clips.find(name);
    if (clip == clips.end()) {
      result.state.fp.emplace_back(name, tensor);
    } else {
      result.state.quantized.emplace_back(name, quantize_weight(tensor, options.weights, clip->second));
    }
  }
  for (auto& named : folded_scale_tensors(*folded)) result.state.fp.push_back(std::move(named));
  return result;
}

absl::StatusOr<AwqResult> quantize_awq(BertForMaskedLM& model, DataLoader& loader, const AwqOptions& options) {
  return quantize_awq(model, loader_batches(loader, options.calibration_batches), options);
}

}  // namespace bertforge::quant
