// Outlier metrics of a BERT model on validation data (docs/design.md "Outlier metrics"): the seed paper's
// (000, eqs. 4-7) kurtosis and inf-norms of each layer's FFN output and layer output and a clipped-softmax
// diagnostic from the attention probabilities; He et al. 2024's kurtosis of the per-neuron RMS ("Understanding
// and Minimising Outlier Features in Neural Network Training"); and attention-sink metrics, the attention mass
// each head puts on the special tokens ([CLS], [SEP]).
//
// An OutlierAccumulator is fed by the model's probe (models/forward_context.h) during evaluation forwards:
//
//   OutlierAccumulator outliers(config.num_hidden_layers);
//   model.set_probe(outliers.probe());
//   for each batch: outliers.set_attention_mask(batch.attention_mask);
//                   outliers.set_special_tokens(is_special);  // 1 at the batch's [CLS] and [SEP] positions
//                   model.forward(...);
//   model.set_probe({});
//   OutlierMetrics metrics = outliers.result();
//
// Padding is excluded everywhere: only the valid tokens of each sample (attention_mask != 0) count, so the
// values do not depend on how much padding a batch carries. For attention probabilities, only valid query rows
// and valid keys count. Every statistic is computed in double.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/tensor.h"
#include "models/forward_context.h"

namespace bertforge {

// A head whose mean special-token attention mass is at least this is an attention sink (sink_share).
inline constexpr double kSinkMassThreshold = 0.3;

// The metrics of one encoder layer.
struct LayerOutlierMetrics {
  // Kurtosis E[(x-mu)^4] / var^2 (not excess: a Gaussian gives 3) of each sample's flattened (valid tokens x C)
  // tensor, averaged over the samples.
  double ffn_output_kurtosis = 0;
  double layer_output_kurtosis = 0;
  // He et al.'s kurtosis of the per-neuron RMS over every valid token of every evaluated sample (N x C):
  // s_j = sqrt(mean_t x_tj^2), Kurt = mean_j(s_j^4) / mean_j(s_j^2)^2; 1 when every neuron has the same RMS,
  // C when one neuron carries everything (0 for an all-zero tensor).
  double ffn_output_rms_kurtosis = 0;
  double layer_output_rms_kurtosis = 0;
  // Inf-norm max|x| over every evaluated sample.
  double ffn_output_inf_norm = 0;
  double ffn_output_plus_residual_inf_norm = 0;
  double layer_output_inf_norm = 0;
  // The inf-norm of each sample, averaged over the samples (the Quantizable Transformers variant).
  double ffn_output_mean_sample_inf_norm = 0;
  double ffn_output_plus_residual_mean_sample_inf_norm = 0;
  double layer_output_mean_sample_inf_norm = 0;
  // Clipped-softmax diagnostic over valid query rows and valid keys: the fraction of probabilities that are
  // exactly 0 and exactly 1, and the fraction of query rows whose every probability is exactly 0 ("dead rows").
  double attention_zero_fraction = 0;
  double attention_one_fraction = 0;
  double attention_dead_row_fraction = 0;
  // Attention sinks. head_special_token_mass[h]: head h's attention mass on the special-token keys (valid keys
  // only), averaged over the valid query rows of every sample. special_token_mass: its mean over heads;
  // sink_share: the fraction of heads with a mass of at least kSinkMassThreshold.
  std::vector<double> head_special_token_mass;
  double special_token_mass = 0;
  double sink_share = 0;
};

struct OutlierMetrics {
  std::vector<LayerOutlierMetrics> layers;
  // Mean and max over the tracked kurtoses: ffn_output and layer_output of every layer.
  double avg_kurtosis = 0;
  double max_kurtosis = 0;
  // Mean and max over the tracked RMS kurtoses: ffn_output and layer_output of every layer.
  double avg_rms_kurtosis = 0;
  double max_rms_kurtosis = 0;
  // Max over layers (and evaluation batches) of the inf-norms.
  double max_ffn_output_inf_norm = 0;                // "Max FFN output inf-norm"
  double max_ffn_output_plus_residual_inf_norm = 0;  // "Max FFN input+output inf-norm"
  double max_layer_output_inf_norm = 0;              // "Max LN(FFN i+o) inf-norm"
  // Mean over layers of attention_dead_row_fraction, and its max.
  double mean_dead_row_fraction = 0;
  double max_dead_row_fraction = 0;
  // Mean over layers of sink_share, its max, and the mean over layers of special_token_mass.
  double mean_sink_share = 0;
  double max_sink_share = 0;
  double mean_special_token_mass = 0;
  int64_t samples = 0;  // samples with at least one valid token

  // Every field above, per-layer values as an array "layers".
  Json to_json() const;
};

class OutlierAccumulator {
 public:
  explicit OutlierAccumulator(int64_t num_layers);

  // The attention mask (B,T) of 0 (padding) and 1, any dtype, of the batch about to be forwarded; undefined:
  // every token is valid.
  void set_attention_mask(const Tensor& attention_mask);
  // Which positions of the batch about to be forwarded are special tokens (the keys of the sink metrics): (B,T),
  // non-zero at [CLS] and [SEP], any dtype; undefined: none (every special-token mass is then 0). Like the
  // attention mask, it holds until set again.
  void set_special_tokens(const Tensor& is_special);

  // Takes one probe observation (a probe point of an encoder layer, value); other sites are ignored.
  void observe(const TapSite& site, const Tensor& value);

  // A probe function for BertForMaskedLM::set_probe that calls observe; `this` must outlive its use.
  ProbeFn probe();

  // The metrics of everything observed so far.
  OutlierMetrics result() const;

 private:
  // Running sums of one (B,T,C) probe point of one layer.
  struct ActivationStats {
    double kurtosis_sum = 0;
    int64_t kurtosis_samples = 0;  // samples with non-zero variance
    double inf_norm = 0;
    double sample_inf_norm_sum = 0;
    int64_t samples = 0;  // samples with at least one valid token
    std::vector<double> channel_sum_sq;  // (C): sum of x^2 over every valid token, for the RMS kurtosis
  };
  // Running counts of one layer's attention probabilities.
  struct AttentionStats {
    int64_t entries = 0;
    int64_t zeros = 0;
    int64_t ones = 0;
    int64_t rows = 0;
    int64_t dead_rows = 0;
    std::vector<double> head_special_mass_sum;  // (H): attention mass on special keys, summed over valid rows
  };
  struct LayerStats {
    ActivationStats ffn_output;
    ActivationStats ffn_output_plus_residual;
    ActivationStats layer_output;
    AttentionStats attention;
  };

  // A (B,T) 0/1 mask as it is stored: `mask` row-major and its shape (all empty / 0 when undefined).
  struct TokenMask {
    std::vector<uint8_t> mask;
    int64_t batch = 0;
    int64_t tokens = 0;

    void set(const Tensor& value, const char* what);  // value (B,T) or undefined
    bool at(int64_t b, int64_t t) const { return mask[b * tokens + t] != 0; }
  };

  // Whether token t of sample b is valid, and whether it is a special token; B and T must match the masks'.
  bool valid(int64_t b, int64_t t) const;
  bool special(int64_t b, int64_t t) const;
  void check_batch_shape(const Tensor& value, int64_t b, int64_t t) const;
  void add_activation(const Tensor& value, ActivationStats& stats) const;  // value (B,T,C)
  void add_attention(const Tensor& probs, AttentionStats& stats) const;    // probs (B,H,T,T)

  std::vector<LayerStats> layers_;
  TokenMask mask_;     // empty: every token valid
  TokenMask special_;  // empty: no special token
};

}  // namespace bertforge
