// Outlier metrics (kurtosis, inf-norms, clipped attention) accumulated from the model's probe points.
#include "train/outlier_metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/check.h"

namespace bertforge {
namespace {

// A float32, contiguous, CPU copy (or view) of a probed tensor, detached from the graph.
Tensor host_f32(const Tensor& value) {
  return value.detach().to(Device::cpu()).to(DType::kF32).contiguous();
}

double mean_or_zero(double sum, int64_t count) { return count > 0 ? sum / static_cast<double>(count) : 0.0; }

Json layer_json(const LayerOutlierMetrics& l) {
  Json j = Json::object();
  j.set("ffn_output_kurtosis", l.ffn_output_kurtosis);
  j.set("layer_output_kurtosis", l.layer_output_kurtosis);
  j.set("ffn_output_inf_norm", l.ffn_output_inf_norm);
  j.set("ffn_output_plus_residual_inf_norm", l.ffn_output_plus_residual_inf_norm);
  j.set("layer_output_inf_norm", l.layer_output_inf_norm);
  j.set("ffn_output_mean_sample_inf_norm", l.ffn_output_mean_sample_inf_norm);
  j.set("ffn_output_plus_residual_mean_sample_inf_norm", l.ffn_output_plus_residual_mean_sample_inf_norm);
  j.set("layer_output_mean_sample_inf_norm", l.layer_output_mean_sample_inf_norm);
  j.set("attention_zero_fraction", l.attention_zero_fraction);
  j.set("attention_one_fraction", l.attention_one_fraction);
  j.set("attention_dead_row_fraction", l.attention_dead_row_fraction);
  return j;
}

}  // namespace

Json OutlierMetrics::to_json() const {
  Json j = Json::object();
  j.set("samples", samples);
  j.set("avg_kurtosis", avg_kurtosis);
  j.set("max_kurtosis", max_kurtosis);
  j.set("max_ffn_output_inf_norm", max_ffn_output_inf_norm);
  j.set("max_ffn_output_plus_residual_inf_norm", max_ffn_output_plus_residual_inf_norm);
  j.set("max_layer_output_inf_norm", max_layer_output_inf_norm);
  j.set("mean_dead_row_fraction", mean_dead_row_fraction);
  j.set("max_dead_row_fraction", max_dead_row_fraction);
  Json per_layer = Json::array();
  for (const LayerOutlierMetrics& l : layers) per_layer.push_back(layer_json(l));
  j.set("layers", std::move(per_layer));
  return j;
}

OutlierAccumulator::OutlierAccumulator(int64_t num_layers) : layers_(num_layers) {}

void OutlierAccumulator::set_attention_mask(const Tensor& attention_mask) {
  mask_.clear();
  mask_batch_ = mask_tokens_ = 0;
  if (!attention_mask.defined()) return;
  BF_CHECK(attention_mask.dim() == 2, "attention_mask must be (B,T), got ", attention_mask.shape_str());
  const Tensor m = host_f32(attention_mask);
  mask_batch_ = m.size(0);
  mask_tokens_ = m.size(1);
  const float* p = m.data<float>();
  mask_.resize(m.numel());
  for (int64_t i = 0; i < m.numel(); ++i) mask_[i] = p[i] != 0.0f;
}

ProbeFn OutlierAccumulator::probe() {
  return [this](const std::string& name, const Tensor& value) { observe(name, value); };
}

void OutlierAccumulator::observe(const std::string& name, const Tensor& value) {
  // name = "layer.<i>.<point>"
  const std::vector<std::string> parts = absl::StrSplit(name, '.');
  int64_t layer = -1;
  if (parts.size() != 3 || parts[0] != "layer" || !absl::SimpleAtoi(parts[1], &layer)) return;
  BF_CHECK(layer >= 0 && layer < static_cast<int64_t>(layers_.size()), "probe ", name, ": the accumulator has ",
           layers_.size(), " layers");
  LayerStats& stats = layers_[layer];
  const std::string& point = parts[2];
  if (point == kProbeFfnOutput) {
    add_activation(value, stats.ffn_output);
  } else if (point == kProbeFfnOutputPlusResidual) {
    add_activation(value, stats.ffn_output_plus_residual);
  } else if (point == kProbeLayerOutput) {
    add_activation(value, stats.layer_output);
  } else if (point == kProbeAttentionProbs) {
    add_attention(value, stats.attention);
  }
}

bool OutlierAccumulator::valid(int64_t b, int64_t t) const {
  return mask_.empty() || mask_[b * mask_tokens_ + t] != 0;
}

void OutlierAccumulator::check_batch_shape(const Tensor& value, int64_t b, int64_t t) const {
  BF_CHECK(mask_.empty() || (b == mask_batch_ && t == mask_tokens_), "probed tensor ", value.shape_str(),
           " does not match the attention mask (", mask_batch_, ", ", mask_tokens_, ")");
}

void OutlierAccumulator::add_activation(const Tensor& value, ActivationStats& stats) const {
  BF_CHECK(value.dim() == 3, "an activation probe must be (B,T,C), got ", value.shape_str());
  const Tensor x = host_f32(value);
  const int64_t batch = x.size(0), tokens = x.size(1), channels = x.size(2);
  check_batch_shape(x, batch, tokens);
  const float* data = x.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    // Two passes over the sample's valid tokens: the mean, then the central moments.
    int64_t n = 0;
    double sum = 0, inf_norm = 0;
    for (int64_t t = 0; t < tokens; ++t) {
      if (!valid(b, t)) continue;
      const float* row = data + (b * tokens + t) * channels;
      for (int64_t c = 0; c < channels; ++c) {
        sum += row[c];
        inf_norm = std::max(inf_norm, std::fabs(static_cast<double>(row[c])));
      }
      n += channels;
    }
    if (n == 0) continue;  // a padding row
    const double mean = sum / static_cast<double>(n);
    double m2 = 0, m4 = 0;
    for (int64_t t = 0; t < tokens; ++t) {
      if (!valid(b, t)) continue;
      const float* row = data + (b * tokens + t) * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const double d2 = (row[c] - mean) * (row[c] - mean);
        m2 += d2;
        m4 += d2 * d2;
      }
    }
    m2 /= static_cast<double>(n);
    m4 /= static_cast<double>(n);
    // A constant sample has no kurtosis; it still counts for the inf-norms.
    if (m2 > 0) {
      stats.kurtosis_sum += m4 / (m2 * m2);
      ++stats.kurtosis_samples;
    }
    stats.inf_norm = std::max(stats.inf_norm, inf_norm);
    stats.sample_inf_norm_sum += inf_norm;
    ++stats.samples;
  }
}

void OutlierAccumulator::add_attention(const Tensor& probs, AttentionStats& stats) const {
  BF_CHECK(probs.dim() == 4 && probs.size(2) == probs.size(3), "attention probabilities must be (B,H,T,T), got ",
           probs.shape_str());
  const Tensor p = host_f32(probs);
  const int64_t batch = p.size(0), heads = p.size(1), tokens = p.size(2);
  check_batch_shape(p, batch, tokens);
  const float* data = p.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t q = 0; q < tokens; ++q) {
        if (!valid(b, q)) continue;
        const float* row = data + ((b * heads + h) * tokens + q) * tokens;
        int64_t entries = 0, zeros = 0;
        for (int64_t k = 0; k < tokens; ++k) {
          if (!valid(b, k)) continue;
          ++entries;
          zeros += row[k] == 0.0f;
          stats.ones += row[k] == 1.0f;
        }
        stats.entries += entries;
        stats.zeros += zeros;
        ++stats.rows;
        stats.dead_rows += zeros == entries;
      }
    }
  }
}

OutlierMetrics OutlierAccumulator::result() const {
  OutlierMetrics metrics;
  double kurtosis_sum = 0, dead_row_sum = 0;
  for (const LayerStats& s : layers_) {
    LayerOutlierMetrics l;
    l.ffn_output_kurtosis = mean_or_zero(s.ffn_output.kurtosis_sum, s.ffn_output.kurtosis_samples);
    l.layer_output_kurtosis = mean_or_zero(s.layer_output.kurtosis_sum, s.layer_output.kurtosis_samples);
    l.ffn_output_inf_norm = s.ffn_output.inf_norm;
    l.ffn_output_plus_residual_inf_norm = s.ffn_output_plus_residual.inf_norm;
    l.layer_output_inf_norm = s.layer_output.inf_norm;
    l.ffn_output_mean_sample_inf_norm = mean_or_zero(s.ffn_output.sample_inf_norm_sum, s.ffn_output.samples);
    l.ffn_output_plus_residual_mean_sample_inf_norm =
        mean_or_zero(s.ffn_output_plus_residual.sample_inf_norm_sum, s.ffn_output_plus_residual.samples);
    l.layer_output_mean_sample_inf_norm = mean_or_zero(s.layer_output.sample_inf_norm_sum, s.layer_output.samples);
    l.attention_zero_fraction = mean_or_zero(static_cast<double>(s.attention.zeros), s.attention.entries);
    l.attention_one_fraction = mean_or_zero(static_cast<double>(s.attention.ones), s.attention.entries);
    l.attention_dead_row_fraction = mean_or_zero(static_cast<double>(s.attention.dead_rows), s.attention.rows);

    kurtosis_sum += l.ffn_output_kurtosis + l.layer_output_kurtosis;
    metrics.max_kurtosis = std::max({metrics.max_kurtosis, l.ffn_output_kurtosis, l.layer_output_kurtosis});
    metrics.max_ffn_output_inf_norm = std::max(metrics.max_ffn_output_inf_norm, l.ffn_output_inf_norm);
    metrics.max_ffn_output_plus_residual_inf_norm =
        std::max(metrics.max_ffn_output_plus_residual_inf_norm, l.ffn_output_plus_residual_inf_norm);
    metrics.max_layer_output_inf_norm = std::max(metrics.max_layer_output_inf_norm, l.layer_output_inf_norm);
    dead_row_sum += l.attention_dead_row_fraction;
    metrics.max_dead_row_fraction = std::max(metrics.max_dead_row_fraction, l.attention_dead_row_fraction);
    metrics.layers.push_back(l);
  }
  const auto tracked = static_cast<int64_t>(2 * layers_.size());
  metrics.avg_kurtosis = mean_or_zero(kurtosis_sum, tracked);
  metrics.mean_dead_row_fraction = mean_or_zero(dead_row_sum, static_cast<int64_t>(layers_.size()));
  metrics.samples = layers_.empty() ? 0 : layers_[0].ffn_output.samples;
  return metrics;
}

}  // namespace bertforge
