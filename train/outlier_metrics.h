// Outlier metrics of a BERT model on validation data (docs/design.md "Outlier metrics", seed paper 000 eqs. 4-7):
// the kurtosis and inf-norms of each layer's FFN output and layer output, and a clipped-softmax diagnostic
// from the attention probabilities.
//
// An OutlierAccumulator is fed by the model's probe (models/forward_context.h) during evaluation forwards:
//
//   OutlierAccumulator outliers(config.num_hidden_layers);
//   model.set_probe(outliers.probe());
//   for each batch: outliers.set_attention_mask(batch.attention_mask); model.forward(...);
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

// The metrics of one encoder layer.
struct LayerOutlierMetrics {
  // Kurtosis E[(x-mu)^4] / var^2 (not excess: a Gaussian gives 3) of each sample's flattened (valid tokens x C)
  // tensor, averaged over the samples.
  double ffn_output_kurtosis = 0;
  double layer_output_kurtosis = 0;
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
};

struct OutlierMetrics {
  std::vector<LayerOutlierMetrics> layers;
  // Mean and max over the tracked kurtoses: ffn_output and layer_output of every layer.
  double avg_kurtosis = 0;
  double max_kurtosis = 0;
  // Max over layers (and evaluation batches) of the inf-norms.
  double max_ffn_output_inf_norm = 0;                // "Max FFN output inf-norm"
  double max_ffn_output_plus_residual_inf_norm = 0;  // "Max FFN input+output inf-norm"
  double max_layer_output_inf_norm = 0;              // "Max LN(FFN i+o) inf-norm"
  // Mean over layers of attention_dead_row_fraction, and its max.
  double mean_dead_row_fraction = 0;
  double max_dead_row_fraction = 0;
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

  // Takes one probe observation ("layer.<i>.<point>", value); other names are ignored.
  void observe(const std::string& name, const Tensor& value);

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
  };
  // Running counts of one layer's attention probabilities.
  struct AttentionStats {
    int64_t entries = 0;
    int64_t zeros = 0;
    int64_t ones = 0;
    int64_t rows = 0;
    int64_t dead_rows = 0;
  };
  struct LayerStats {
    ActivationStats ffn_output;
    ActivationStats ffn_output_plus_residual;
    ActivationStats layer_output;
    AttentionStats attention;
  };

  // Whether token t of sample b is valid; B and T must match the mask's.
  bool valid(int64_t b, int64_t t) const;
  void check_batch_shape(const Tensor& value, int64_t b, int64_t t) const;
  void add_activation(const Tensor& value, ActivationStats& stats) const;  // value (B,T,C)
  void add_attention(const Tensor& probs, AttentionStats& stats) const;    // probs (B,H,T,T)

  std::vector<LayerStats> layers_;
  std::vector<uint8_t> mask_;  // (B,T) row-major; empty: every token valid
  int64_t mask_batch_ = 0;
  int64_t mask_tokens_ = 0;
};

}  // namespace bertforge
