// quant/awq.cpp — AWQ: statistics, scale search, exact folding, clip search (see awq.h for the algorithm).
#include "quant/awq.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "quant/awq_statistics.h"
#include "quant/calibration.h"
#include "quant/ptq.h"
#include "quant/weight_quant.h"

namespace bertforge::quant {
namespace {

std::string layer_param(int64_t layer, absl::string_view suffix) {
  return absl::StrCat("bert.encoder.layer.", layer, ".", suffix);
}

Tensor vector_tensor(const std::vector<float>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

Tensor reciprocal(const Tensor& s) {
  std::vector<float> v = s.to_float_vector();
  for (float& x : v) x = 1.0f / x;
  return vector_tensor(v);
}

// The inputs of one layer's Linears (awq.h step 1).
enum InputSite { kLayerInput, kContext, kAttentionLayerNorm, kGeluOutput, kInputSites };

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

// What the search decides for one Linear, and its report.
struct LinearPlan {
  std::string name;
  Tensor scale;              // (K) input scale, undefined when unscaled
  std::vector<float> clip;   // (N) per-row ratios
  AwqLinearReport report;
};

// Steps 4-5 for one Linear: X' (n,K) and W' (N,K) already scaled. Fills plan.clip and the clip / awq fields.
void clip_search(const Tensor& Xs, const Tensor& Ws, const AwqOptions& options, LinearPlan& plan) {
  const int64_t N = Ws.size(0);
  std::vector<double> best(static_cast<size_t>(N), 0.0);
  plan.clip.assign(static_cast<size_t>(N), 1.0f);
  for (int i = 0; i < options.clip_grid; ++i) {
    const float c = options.clip_grid == 1
                        ? 1.0f
                        : 1.0f - (1.0f - options.min_clip) * static_cast<float>(i) / (options.clip_grid - 1);
    const std::vector<double> e = row_errors(Xs, Ws, options.weights, std::vector<float>(N, c));
    for (int64_t n = 0; n < N; ++n) {
      if (i == 0 || e[n] < best[n]) {
        best[n] = e[n];
        plan.clip[n] = c;
      }
    }
  }
  AwqLinearReport& r = plan.report;
  r.clip_min = *std::min_element(plan.clip.begin(), plan.clip.end());
  r.clip_max = *std::max_element(plan.clip.begin(), plan.clip.end());
  double clip_sum = 0;
  for (float c : plan.clip) clip_sum += c;
  r.clip_mean = static_cast<float>(clip_sum / N);
  r.awq_mse = sum(best) / static_cast<double>(Xs.size(0) * N);
}

// Steps 2, 4, 5 for one Linear with input statistics `stats`; scaled when fold != kNone.
LinearPlan plan_linear(const std::string& name, const Tensor& W, const AwqInputStatistics& stats, AwqFold fold,
                       const AwqOptions& options) {
  LinearPlan plan;
  plan.name = name;
  AwqLinearReport& r = plan.report;
  r.name = name;
  r.rows = W.size(0);
  r.cols = W.size(1);
  r.scheme = options.weights;
  r.fold = fold;
  const Tensor X = stats.samples();
  r.samples = X.size(0);
  const double per_element = static_cast<double>(X.size(0) * W.size(0));
  const std::vector<float> mean = stats.mean_abs();

  // Step 2: alpha = 0 first (s = 1: RTN), then the rest of the grid when this Linear is scaled.
  double best_err = sum(row_errors(X, W, options.weights, {}));
  r.rtn_mse = best_err / per_element;
  double best_alpha = 0;
  const int alphas = fold == AwqFold::kNone || !options.search_scales ? 1 : options.scale_grid;
  for (int i = 1; i < alphas; ++i) {
    const double alpha = static_cast<double>(i) / options.scale_grid;
    const Tensor s = awq_scale(mean, alpha);
    const double err = sum(row_errors(mul(X, reciprocal(s)), mul(W, s), options.weights, {}));
    if (err < best_err) {
      best_err = err;
      best_alpha = alpha;
    }
  }
  r.alpha = best_alpha;
  r.scaled_mse = best_err / per_element;
  if (best_alpha == 0) {
    r.fold = AwqFold::kNone;
    clip_search(X, W, options, plan);
  } else {
    plan.scale = awq_scale(mean, best_alpha);
    clip_search(mul(X, reciprocal(plan.scale)), mul(W, plan.scale), options, plan);
  }
  return plan;
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

const char* awq_fold_name(AwqFold fold) {
  switch (fold) {
    case AwqFold::kNone: return "unscaled";
    case AwqFold::kIntoValue: return "value";
    case AwqFold::kScaledGelu: return "gelu*1/s";
  }
  return "?";
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

StateDict fold_awq_scales(const StateDict& state, const std::vector<AwqLayerScales>& scales) {
  autograd::NoGradGuard no_grad;
  // name -> (scale, how): rows of value (weight and bias) by 1/s, columns of a dense by s.
  enum How { kRows, kColumns };
  std::map<std::string, std::pair<Tensor, How>> edits;
  for (size_t l = 0; l < scales.size(); ++l) {
    const int64_t layer = static_cast<int64_t>(l);
    if (scales[l].context.defined()) {
      const Tensor inv = reciprocal(scales[l].context);
      edits[layer_param(layer, "attention.self.value.weight")] = {inv, kRows};
      edits[layer_param(layer, "attention.self.value.bias")] = {inv, kRows};
      edits[layer_param(layer, "attention.output.dense.weight")] = {scales[l].context, kColumns};
    }
    if (scales[l].gelu.defined()) edits[layer_param(layer, "output.dense.weight")] = {scales[l].gelu, kColumns};
  }
  StateDict out;
  for (const auto& [name, tensor] : state) {
    const auto it = edits.find(name);
    if (it == edits.end()) {
      out.emplace_back(name, tensor);
      continue;
    }
    const auto& [s, how] = it->second;
    const bool matrix = tensor.dim() == 2;
    const Tensor factor = how == kRows && matrix ? s.view({s.size(0), 1}) : s;
    out.emplace_back(name, mul(tensor, factor).contiguous());
  }
  return out;
}

AwqInputScales awq_gelu_scales(const std::vector<AwqLayerScales>& scales) {
  AwqInputScales out;
  for (const AwqLayerScales& s : scales) out.gelu.push_back(s.gelu);
  return out;
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

absl::StatusOr<AwqResult> quantize_awq(BertForMaskedLM& model, const AwqBatchSource& next_batch,
                                       const AwqOptions& options) {
  BF_RETURN_IF_ERROR(options.validate());
  const BertConfig& config = model.config();
  const int64_t L = config.num_hidden_layers, C = config.hidden_size, I = config.intermediate_size;
  autograd::NoGradGuard no_grad;

  // Step 1: statistics of every Linear input, one pass of the FP model.
  std::vector<std::unique_ptr<AwqInputStatistics>> stats;  // [layer * kInputSites + site]
  for (int64_t l = 0; l < L; ++l) {
    for (int site = 0; site < kInputSites; ++site) {
      const uint64_t seed = options.seed * 1000003ull + static_cast<uint64_t>(l * kInputSites + site);
      stats.push_back(std::make_unique<AwqInputStatistics>(site == kGeluOutput ? I : C, options.max_samples, seed));
    }
  }
  {
    const ScopedEvalMode eval_mode(model);
    Tensor mask;  // the current batch's attention mask (B,T)
    const auto record = [&](int64_t layer, InputSite site, const Tensor& value) {
      if (layer < L) stats[layer * kInputSites + site]->observe(value, mask);
    };
    const ScopedActivationHook hook(model, [&](const TapSite& site, const Tensor& value) {
      switch (site.point) {
        case TapPoint::kEmbeddingLayerNorm: record(0, kLayerInput, value); break;
        case TapPoint::kLayerOutput: record(site.layer + 1, kLayerInput, value); break;
        case TapPoint::kContext: record(site.layer, kContext, value); break;
        case TapPoint::kAttentionLayerNorm: record(site.layer, kAttentionLayerNorm, value); break;
        case TapPoint::kGelu: record(site.layer, kGeluOutput, value); break;
        default: break;
      }
      return value;
    });
    MlmBatch batch;
    while (next_batch(&batch)) {
      mask = batch.attention_mask;
      model.encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
    }
  }
  AwqResult result;
  result.calibration_tokens = stats.empty() ? 0 : stats[0]->rows_seen();
  if (result.calibration_tokens == 0) {
    return absl::FailedPreconditionError("AWQ: the calibration batches hold no real token");
  }

  // Steps 2, 4, 5 per Linear; the scales of the folded Linears are collected for step 3.
  std::map<std::string, Tensor> params;
  for (const auto& [name, tensor] : model.state_dict()) params.emplace(name, tensor);
  struct Target {
    const char* weight;
    InputSite input;
    AwqFold fold;
  };
  constexpr Target kTargets[] = {
      {"attention.self.query.weight", kLayerInput, AwqFold::kNone},
      {"attention.self.key.weight", kLayerInput, AwqFold::kNone},
      {"attention.self.value.weight", kLayerInput, AwqFold::kNone},
      {"attention.output.dense.weight", kContext, AwqFold::kIntoValue},
      {"intermediate.dense.weight", kAttentionLayerNorm, AwqFold::kNone},
      {"output.dense.weight", kGeluOutput, AwqFold::kScaledGelu},
  };
  result.scales.resize(static_cast<size_t>(L));
  std::map<std::string, std::vector<float>> clips;
  for (int64_t l = 0; l < L; ++l) {
    for (const Target& target : kTargets) {
      const std::string name = layer_param(l, target.weight);
      const auto it = params.find(name);
      if (it == params.end()) return absl::InternalError(absl::StrCat("AWQ: the model has no ", name));
      LinearPlan plan = plan_linear(name, it->second, *stats[l * kInputSites + target.input], target.fold, options);
      if (plan.report.fold == AwqFold::kIntoValue) result.scales[l].context = plan.scale;
      if (plan.report.fold == AwqFold::kScaledGelu) result.scales[l].gelu = plan.scale;
      clips[name] = std::move(plan.clip);
      result.linears.push_back(std::move(plan.report));
    }
    stats[l * kInputSites + kGeluOutput].reset();  // the largest samples; no longer needed
  }

  // Step 3 (fold), then step 5 (quantize with the chosen clips), in model order.
  for (const auto& [name, tensor] : fold_awq_scales(model.state_dict(), result.scales)) {
    const auto clip = clips.find(name);
    if (clip == clips.end()) {
      result.state.fp.emplace_back(name, tensor);
    } else {
      result.state.quantized.emplace_back(name, quantize_weight(tensor, options.weights, clip->second));
    }
  }
  for (int64_t l = 0; l < L; ++l) {
    if (result.scales[l].gelu.defined()) result.state.fp.emplace_back(awq_input_scale_name(l), result.scales[l].gelu);
  }
  return result;
}

absl::StatusOr<AwqResult> quantize_awq(BertForMaskedLM& model, DataLoader& loader, const AwqOptions& options) {
  BF_RETURN_IF_ERROR(options.validate());
  int64_t taken = 0;
  return quantize_awq(
      model,
      [&](MlmBatch* batch) {
        if (taken == options.calibration_batches) return false;
        ++taken;
        *batch = loader.next();
        return true;
      },
      options);
}

}  // namespace bertforge::quant
