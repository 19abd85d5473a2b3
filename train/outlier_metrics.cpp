// Outlier metrics (kurtosis, RMS kurtosis, inf-norms, clipped attention, attention sinks) accumulated from the
// model's probe points.
#include "train/outlier_metrics.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace bertforge {
namespace {

// A float32, contiguous, CPU copy (or view) of a probed tensor, detached from the graph.
Tensor host_f32(const Tensor& value) {
  return value.detach().to(Device::cpu()).to(DType::kF32).contiguous();
}

double mean_or_zero(double sum, int64_t count) { return count > 0 ? sum / static_cast<double>(count) : 0.0; }

// He et al.'s kurtosis of the per-neuron RMS, mean_j(s_j^4) / mean_j(s_j^2)^2 with s_j^2 = sum_sq[j] / N: the
// token count N cancels, so the sums of squares stand for s_j^2. 0 for no neuron or an all-zero tensor.
double rms_kurtosis(const std::vector<double>& sum_sq) {
  double m2 = 0, m4 = 0;
  for (const double s2 : sum_sq) {
    m2 += s2;
    m4 += s2 * s2;
  }
  if (m2 == 0) return 0.0;
  const auto neurons = static_cast<double>(sum_sq.size());
  m2 /= neurons;
  m4 /= neurons;
  return m4 / (m2 * m2);
}

Json layer_json(const LayerOutlierMetrics& l) {
  Json j = Json::object();
  j.set("ffn_output_kurtosis", l.ffn_output_kurtosis);
  j.set("layer_output_kurtosis", l.layer_output_kurtosis);
  j.set("ffn_output_rms_kurtosis", l.ffn_output_rms_kurtosis);
  j.set("layer_output_rms_kurtosis", l.layer_output_rms_kurtosis);
  j.set("ffn_output_inf_norm", l.ffn_output_inf_norm);
  j.set("ffn_output_plus_residual_inf_norm", l.ffn_output_plus_residual_inf_norm);
  j.set("layer_output_inf_norm", l.layer_output_inf_norm);
  j.set("ffn_output_mean_sample_inf_norm", l.ffn_output_mean_sample_inf_norm);
  j.set("ffn_output_plus_residual_mean_sample_inf_norm", l.ffn_output_plus_residual_mean_sample_inf_norm);
  j.set("layer_output_mean_sample_inf_norm", l.layer_output_mean_sample_inf_norm);
  j.set("attention_zero_fraction", l.attention_zero_fraction);
  j.set("attention_one_fraction", l.attention_one_fraction);
  j.set("attention_dead_row_fraction", l.attention_dead_row_fraction);
  Json head_mass = Json::array();
  for (const double m : l.head_special_token_mass) head_mass.push_back(Json(m));
  j.set("head_special_token_mass", std::move(head_mass));
  j.set("special_token_mass", l.special_token_mass);
  j.set("sink_share", l.sink_share);
  return j;
}

}  // namespace

Json OutlierMetrics::to_json() const {
  Json j = Json::object();
  j.set("samples", samples);
  j.set("avg_kurtosis", avg_kurtosis);
  j.set("max_kurtosis", max_kurtosis);
  j.set("avg_rms_kurtosis", avg_rms_kurtosis);
  j.set("max_rms_kurtosis", max_rms_kurtosis);
  j.set("max_ffn_output_inf_norm", max_ffn_output_inf_norm);
  j.set("max_ffn_output_plus_residual_inf_norm", max_ffn_output_plus_residual_inf_norm);
  j.set("max_layer_output_inf_norm", max_layer_output_inf_norm);
  j.set("mean_dead_row_fraction", mean_dead_row_fraction);
  j.set("max_dead_row_fraction", max_dead_row_fraction);
  j.set("mean_sink_share", mean_sink_share);
  j.set("max_sink_share", max_sink_share);
  j.set("mean_special_token_mass", mean_special_token_mass);
  Json per_layer = Json::array();
  for (const LayerOutlierMetrics& l : layers) per_layer.push_back(layer_json(l));
  j.set("layers", std::move(per_layer));
  return j;
}

OutlierAccumulator::OutlierAccumulator(int64_t num_layers) : layers_(num_layers) {}

void OutlierAccumulator::TokenMask::set(const Tensor& value, const char* what) {
  mask.clear();
  batch = tokens = 0;
  if (!value.defined()) return;
  BF_CHECK(value.dim() == 2, what, " must be (B,T), got ", value.shape_str());
  const Tensor m = host_f32(value);
  batch = m.size(0);
  tokens = m.size(1);
  const float* p = m.data<float>();
  mask.resize(m.numel());
  for (int64_t i = 0; i < m.numel(); ++i) mask[i] = p[i] != 0.0f;
}

void OutlierAccumulator::set_attention_mask(const Tensor& attention_mask) {
  mask_.set(attention_mask, "attention_mask");
}

void OutlierAccumulator::set_special_tokens(const Tensor& is_special) { special_.set(is_special, "is_special"); }

ProbeFn OutlierAccumulator::probe() {
  return [this](const TapSite& site, const Tensor& value) { observe(site, value); };
}

void OutlierAccumulator::observe(const TapSite& site, const Tensor& value) {
  if (site.layer == kEmbeddingsLayer) return;
  BF_CHECK(site.layer >= 0 && site.layer < static_cast<int64_t>(layers_.size()), "probe ", site.name(),
           ": the accumulator has ", layers_.size(), " layers");
  LayerStats& stats = layers_[site.layer];
  switch (site.point) {
    case TapPoint::kFfnOutput: add_activation(value, stats.ffn_output); break;
    case TapPoint::kFfnOutputPlusResidual: add_activation(value, stats.ffn_output_plus_residual); break;
    case TapPoint::kLayerOutput: add_activation(value, stats.layer_output); break;
    case TapPoint::kAttentionProbs: add_attention(value, stats.attention); break;
    default: break;
  }
}

bool OutlierAccumulator::valid(int64_t b, int64_t t) const { return mask_.mask.empty() || mask_.at(b, t); }

bool OutlierAccumulator::special(int64_t b, int64_t t) const { return !special_.mask.empty() && special_.at(b, t); }

void OutlierAccumulator::check_batch_shape(const Tensor& value, int64_t b, int64_t t) const {
  for (const TokenMask* m : {&mask_, &special_}) {
    BF_CHECK(m->mask.empty() || (b == m->batch && t == m->tokens), "probed tensor ", value.shape_str(),
             " does not match the ", m == &mask_ ? "attention mask" : "special-token mask", " (", m->batch, ", ",
             m->tokens, ")");
  }
}

void OutlierAccumulator::add_activation(const Tensor& value, ActivationStats& stats) const {
  BF_CHECK(value.dim() == 3, "an activation probe must be (B,T,C), got ", value.shape_str());
  const Tensor x = host_f32(value);
  const int64_t batch = x.size(0), tokens = x.size(1), channels = x.size(2);
  check_batch_shape(x, batch, tokens);
  if (stats.channel_sum_sq.empty()) stats.channel_sum_sq.assign(channels, 0.0);
  BF_CHECK(static_cast<int64_t>(stats.channel_sum_sq.size()) == channels, "probed tensor ", x.shape_str(),
           " does not have the ", stats.channel_sum_sq.size(), " channels of earlier batches");
  const float* data = x.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    // Two passes over the sample's valid tokens: the mean (and the per-neuron sums of squares), then the central
    // moments.
    int64_t n = 0;
    double sum = 0, inf_norm = 0;
    for (int64_t t = 0; t < tokens; ++t) {
      if (!valid(b, t)) continue;
      const float* row = data + (b * tokens + t) * channels;
      for (int64_t c = 0; c < channels; ++c) {
        sum += row[c];
        inf_norm = std::max(inf_norm, std::fabs(static_cast<double>(row[c])));
        stats.channel_sum_sq[c] += static_cast<double>(row[c]) * row[c];
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
  if (stats.head_special_mass_sum.empty()) stats.head_special_mass_sum.assign(heads, 0.0);
  BF_CHECK(static_cast<int64_t>(stats.head_special_mass_sum.size()) == heads, "attention probabilities ",
           p.shape_str(), " do not have the ", stats.head_special_mass_sum.size(), " heads of earlier batches");
  const float* data = p.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t q = 0; q < tokens; ++q) {
        if (!valid(b, q)) continue;
        const float* row = data + ((b * heads + h) * tokens + q) * tokens;
        int64_t entries = 0, zeros = 0;
        double special_mass = 0;
        for (int64_t k = 0; k < tokens; ++k) {
          if (!valid(b, k)) continue;
          ++entries;
          zeros += row[k] == 0.0f;
          stats.ones += row[k] == 1.0f;
          if (special(b, k)) special_mass += row[k];
        }
        stats.head_special_mass_sum[h] += special_mass;
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
  double kurtosis_sum = 0, rms_kurtosis_sum = 0, dead_row_sum = 0, sink_share_sum = 0, special_mass_sum = 0;
  for (const LayerStats& s : layers_) {
    LayerOutlierMetrics l;
    l.ffn_output_kurtosis = mean_or_zero(s.ffn_output.kurtosis_sum, s.ffn_output.kurtosis_samples);
    l.layer_output_kurtosis = mean_or_zero(s.layer_output.kurtosis_sum, s.layer_output.kurtosis_samples);
    l.ffn_output_rms_kurtosis = rms_kurtosis(s.ffn_output.channel_sum_sq);
    l.layer_output_rms_kurtosis = rms_kurtosis(s.layer_output.channel_sum_sq);
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
    // Every head has the same valid query rows, so each has rows / H of them.
    const auto heads = static_cast<int64_t>(s.attention.head_special_mass_sum.size());
    int64_t sinks = 0;
    for (const double mass_sum : s.attention.head_special_mass_sum) {
      const double mass = mean_or_zero(mass_sum, s.attention.rows / heads);
      l.head_special_token_mass.push_back(mass);
      l.special_token_mass += mass / static_cast<double>(heads);
      sinks += mass >= kSinkMassThreshold;
    }
    l.sink_share = mean_or_zero(static_cast<double>(sinks), heads);

    kurtosis_sum += l.ffn_output_kurtosis + l.layer_output_kurtosis;
    metrics.max_kurtosis = std::max({metrics.max_kurtosis, l.ffn_output_kurtosis, l.layer_output_kurtosis});
    rms_kurtosis_sum += l.ffn_output_rms_kurtosis + l.layer_output_rms_kurtosis;
    metrics.max_rms_kurtosis =
        std::max({metrics.max_rms_kurtosis, l.ffn_output_rms_kurtosis, l.layer_output_rms_kurtosis});
    metrics.max_ffn_output_inf_norm = std::max(metrics.max_ffn_output_inf_norm, l.ffn_output_inf_norm);
    metrics.max_ffn_output_plus_residual_inf_norm =
        std::max(metrics.max_ffn_output_plus_residual_inf_norm, l.ffn_output_plus_residual_inf_norm);
    metrics.max_layer_output_inf_norm = std::max(metrics.max_layer_output_inf_norm, l.layer_output_inf_norm);
    dead_row_sum += l.attention_dead_row_fraction;
    metrics.max_dead_row_fraction = std::max(metrics.max_dead_row_fraction, l.attention_dead_row_fraction);
    sink_share_sum += l.sink_share;
    metrics.max_sink_share = std::max(metrics.max_sink_share, l.sink_share);
    special_mass_sum += l.special_token_mass;
    metrics.layers.push_back(l);
  }
  const auto tracked = static_cast<int64_t>(2 * layers_.size());
  const auto num_layers = static_cast<int64_t>(layers_.size());
  metrics.avg_kurtosis = mean_or_zero(kurtosis_sum, tracked);
  metrics.avg_rms_kurtosis = mean_or_zero(rms_kurtosis_sum, tracked);
  metrics.mean_dead_row_fraction = mean_or_zero(dead_row_sum, num_layers);
  metrics.mean_sink_share = mean_or_zero(sink_share_sum, num_layers);
  metrics.mean_special_token_mass = mean_or_zero(special_mass_sum, num_layers);
  metrics.samples = layers_.empty() ? 0 : layers_[0].ffn_output.samples;
  return metrics;
}

}  // namespace bertforge
