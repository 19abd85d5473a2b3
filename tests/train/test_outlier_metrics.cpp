// Outlier metrics: kurtosis and He et al.'s RMS kurtosis against closed forms, inf-norm maxima, padding exclusion,
// the clipped-attention fractions and the attention-sink metrics on hand-made probabilities, and evaluate() / the
// trainer's log on a tiny model.
#include "train/outlier_metrics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "core/file_io.h"
#include "core/json.h"
#include "models/bert.h"
#include "tests/support/test_support.h"
#include "train/data_loader.h"
#include "train/evaluation.h"
#include "train/token_shard.h"
#include "train/trainer.h"

namespace bertforge {
namespace {

// Kurtosis of a sample with one value 1 among n-1 zeros (a Bernoulli(p = 1/n) sample):
// (1 - 3p + 3p^2) / (p (1 - p)); 43/7 for n = 8.
constexpr double kSpikeKurtosis8 = 43.0 / 7.0;

// Feeds the same (B,T,C) tensor to every activation probe point of `layer`.
void observe_activations(OutlierAccumulator& acc, int64_t layer, const Tensor& x) {
  acc.observe(TapSite{layer, TapPoint::kFfnOutput}, x);
  acc.observe(TapSite{layer, TapPoint::kFfnOutputPlusResidual}, x);
  acc.observe(TapSite{layer, TapPoint::kLayerOutput}, x);
}

TEST(OutlierMetrics, KurtosisOfClosedForms) {
  // Sample 0: +-1 (kurtosis exactly 1); sample 1: one spike among 8 values (43/7). T = 2, C = 4.
  const Tensor x = Tensor::from_vector<float>({1, -1, 1, -1, -1, 1, -1, 1,  //
                                              0, 0, 0, 0, 0, 0, 0, 10},
                                             {2, 2, 4});
  OutlierAccumulator acc(1);
  acc.set_attention_mask(Tensor());
  observe_activations(acc, 0, x);
  const OutlierMetrics m = acc.result();
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_NEAR(m.layers[0].ffn_output_kurtosis, (1.0 + kSpikeKurtosis8) / 2, 1e-12);
  EXPECT_NEAR(m.layers[0].layer_output_kurtosis, (1.0 + kSpikeKurtosis8) / 2, 1e-12);
  EXPECT_NEAR(m.avg_kurtosis, (1.0 + kSpikeKurtosis8) / 2, 1e-12);
  EXPECT_EQ(m.samples, 2);
}

TEST(OutlierMetrics, AverageAndMaxOverTrackedTensorsAndLayers) {
  const Tensor ones = Tensor::from_vector<float>({1, -1, 1, -1}, {1, 1, 4});           // kurtosis 1
  const Tensor spike = Tensor::from_vector<float>({0, 0, 0, 0, 0, 0, 0, -3}, {1, 2, 4});  // 43/7, |x| max 3
  OutlierAccumulator acc(2);
  acc.observe(TapSite{0, TapPoint::kFfnOutput}, ones);
  acc.observe(TapSite{0, TapPoint::kLayerOutput}, ones);
  acc.observe(TapSite{1, TapPoint::kFfnOutput}, spike);
  acc.observe(TapSite{1, TapPoint::kLayerOutput}, ones);
  acc.observe(TapSite{kEmbeddingsLayer, TapPoint::kEmbeddingLayerNorm}, spike);  // not a layer probe: ignored
  const OutlierMetrics m = acc.result();
  EXPECT_NEAR(m.avg_kurtosis, (3.0 + kSpikeKurtosis8) / 4, 1e-12);
  EXPECT_NEAR(m.max_kurtosis, kSpikeKurtosis8, 1e-12);
  EXPECT_DOUBLE_EQ(m.max_ffn_output_inf_norm, 3.0);
  EXPECT_DOUBLE_EQ(m.max_layer_output_inf_norm, 1.0);
}

TEST(OutlierMetrics, InfNormsAreMaximaOverBatchesAndLayers) {
  OutlierAccumulator acc(2);
  // Batch 1: sample inf-norms 2 and 5 (layer 0), 7 (layer 1, sample 0).
  observe_activations(acc, 0, Tensor::from_vector<float>({1, -2, 0.5f, 5}, {2, 1, 2}));
  observe_activations(acc, 1, Tensor::from_vector<float>({-7, 1, 0, 1}, {2, 1, 2}));
  // Batch 2: smaller values do not lower the maxima; sample inf-norm 3.
  observe_activations(acc, 0, Tensor::from_vector<float>({3, 0}, {1, 1, 2}));
  const OutlierMetrics m = acc.result();
  EXPECT_DOUBLE_EQ(m.layers[0].ffn_output_inf_norm, 5.0);
  EXPECT_DOUBLE_EQ(m.layers[1].ffn_output_inf_norm, 7.0);
  EXPECT_DOUBLE_EQ(m.max_ffn_output_inf_norm, 7.0);
  EXPECT_DOUBLE_EQ(m.max_ffn_output_plus_residual_inf_norm, 7.0);
  EXPECT_DOUBLE_EQ(m.max_layer_output_inf_norm, 7.0);
  EXPECT_DOUBLE_EQ(m.layers[0].ffn_output_mean_sample_inf_norm, (2.0 + 5.0 + 3.0) / 3);
  EXPECT_DOUBLE_EQ(m.layers[1].layer_output_mean_sample_inf_norm, (7.0 + 1.0) / 2);
}

TEST(OutlierMetrics, PaddedPositionsDoNotCount) {
  // Unpadded: one sample of T = 2 valid tokens, and a second sample of one token.
  OutlierAccumulator plain(1);
  observe_activations(plain, 0, Tensor::from_vector<float>({0, 0, 0, 0, 0, 0, 0, 10}, {1, 2, 4}));
  observe_activations(plain, 0, Tensor::from_vector<float>({1, -1, 1, -1}, {1, 1, 4}));

  // Padded to T = 3 with huge values at the padded positions, and a third, all-padding sample.
  const float huge = 1e6f;
  OutlierAccumulator padded(1);
  padded.set_attention_mask(Tensor::from_vector<float>({1, 1, 0,  //
                                                        0, 1, 0,  //
                                                        0, 0, 0},
                                                       {3, 3}));
  observe_activations(padded, 0, Tensor::from_vector<float>({0, 0, 0, 0, 0, 0, 0, 10, huge, -huge, huge, 3,  //
                                                             huge, 2, 2, 2, 1, -1, 1, -1, huge, huge, 1, 1,  //
                                                             huge, huge, huge, huge, 1, 2, 3, 4, 5, 6, 7, 8},
                                                            {3, 3, 4}));
  const OutlierMetrics a = plain.result(), b = padded.result();
  EXPECT_EQ(b.samples, 2);
  EXPECT_DOUBLE_EQ(b.layers[0].ffn_output_kurtosis, a.layers[0].ffn_output_kurtosis);
  EXPECT_DOUBLE_EQ(b.layers[0].layer_output_kurtosis, a.layers[0].layer_output_kurtosis);
  EXPECT_DOUBLE_EQ(b.max_ffn_output_inf_norm, 10.0);
  EXPECT_DOUBLE_EQ(b.layers[0].ffn_output_mean_sample_inf_norm, a.layers[0].ffn_output_mean_sample_inf_norm);
}

TEST(OutlierMetrics, ClippedAttentionFractions) {
  // B = 1, H = 2, T = 3, token 2 is padding. Valid entries per valid row: keys 0 and 1.
  //   head 0, row 0: [0, 0 | 0.9]  dead (the padded key does not count)
  //   head 0, row 1: [1, 0 | 0  ]  one 1, one 0
  //   head 1, row 0: [0.4, 0.6 | 0] no clipping
  //   head 1, row 1: [0, 0 | 1  ]  dead
  //   row 2 of each head is a padded query: ignored whatever it holds.
  const Tensor probs = Tensor::from_vector<float>({0, 0, 0.9f, 1, 0, 0, 0, 0, 0,  //
                                                   0.4f, 0.6f, 0, 0, 0, 1, 1, 1, 1},
                                                  {1, 2, 3, 3});
  OutlierAccumulator acc(1);
  acc.set_attention_mask(Tensor::from_vector<float>({1, 1, 0}, {1, 3}));
  acc.observe(TapSite{0, TapPoint::kAttentionProbs}, probs);
  const OutlierMetrics m = acc.result();
  // 8 valid entries: zeros 2 + 1 + 0 + 2 = 5, ones 1; 4 valid rows, 2 dead.
  EXPECT_DOUBLE_EQ(m.layers[0].attention_zero_fraction, 5.0 / 8);
  EXPECT_DOUBLE_EQ(m.layers[0].attention_one_fraction, 1.0 / 8);
  EXPECT_DOUBLE_EQ(m.layers[0].attention_dead_row_fraction, 0.5);
  EXPECT_DOUBLE_EQ(m.mean_dead_row_fraction, 0.5);
  EXPECT_DOUBLE_EQ(m.max_dead_row_fraction, 0.5);
}

// He et al.'s kurtosis of the per-neuron RMS of a tensor whose C neurons have RMS r except one with RMS a*r:
// C ((C-1) + a^4) / ((C-1) + a^2)^2.
double scaled_neuron_rms_kurtosis(double channels, double a) {
  return channels * ((channels - 1) + a * a * a * a) / (((channels - 1) + a * a) * ((channels - 1) + a * a));
}

TEST(OutlierMetrics, RmsKurtosisOfClosedForms) {
  // C = 4, T = 3. Equal RMS 3 on every neuron (signs vary): 1. Constant rows with neuron 0 scaled by 2: a tensor
  // with no variance per neuron, so the RMS is not centred. Only neuron 2 non-zero: C.
  const Tensor equal = Tensor::from_vector<float>({3, -3, 3, 3, -3, 3, -3, 3, 3, 3, 3, -3}, {1, 3, 4});
  const Tensor scaled = Tensor::from_vector<float>({2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1}, {1, 3, 4});
  const Tensor one_hot = Tensor::from_vector<float>({0, 0, 5, 0, 0, 0, -1, 0, 0, 0, 2, 0}, {1, 3, 4});
  OutlierAccumulator acc(2);
  acc.observe(TapSite{0, TapPoint::kFfnOutput}, equal);
  acc.observe(TapSite{0, TapPoint::kLayerOutput}, scaled);
  acc.observe(TapSite{1, TapPoint::kFfnOutput}, one_hot);
  acc.observe(TapSite{1, TapPoint::kLayerOutput}, equal);
  const OutlierMetrics m = acc.result();
  const double scaled_kurtosis = scaled_neuron_rms_kurtosis(4, 2);  // 76/49
  EXPECT_NEAR(scaled_kurtosis, 76.0 / 49, 1e-15);
  EXPECT_NEAR(m.layers[0].ffn_output_rms_kurtosis, 1.0, 1e-12);
  EXPECT_NEAR(m.layers[0].layer_output_rms_kurtosis, scaled_kurtosis, 1e-12);
  EXPECT_NEAR(m.layers[1].ffn_output_rms_kurtosis, 4.0, 1e-12);
  EXPECT_NEAR(m.layers[1].layer_output_rms_kurtosis, 1.0, 1e-12);
  EXPECT_NEAR(m.avg_rms_kurtosis, (1.0 + scaled_kurtosis + 4.0 + 1.0) / 4, 1e-12);
  EXPECT_NEAR(m.max_rms_kurtosis, 4.0, 1e-12);
}

TEST(OutlierMetrics, RmsKurtosisPoolsValidTokensOfEveryBatch) {
  // Sample A: two valid tokens (2, 1, 1, 1); sample B: one valid token (0, 1, -1, 1); padded tokens hold huge
  // values. Pooled per-neuron sums of squares (8, 3, 3, 3): Kurt = 4 (64 + 3 * 9) / 17^2 = 364/289, not the mean
  // of the per-sample values 76/49 and 4/3.
  const float huge = 1e6f;
  const std::vector<float> a = {2, 1, 1, 1, huge, huge, huge, -huge, 2, 1, 1, 1};
  const std::vector<float> b = {huge, 0, huge, huge, 0, 1, -1, 1, huge, huge, huge, huge};
  const std::vector<float> mask_a = {1, 0, 1}, mask_b = {0, 1, 0};
  const double want = 364.0 / 289;

  OutlierAccumulator two_batches(1);
  two_batches.set_attention_mask(Tensor::from_vector(mask_a, {1, 3}));
  observe_activations(two_batches, 0, Tensor::from_vector(a, {1, 3, 4}));
  two_batches.set_attention_mask(Tensor::from_vector(mask_b, {1, 3}));
  observe_activations(two_batches, 0, Tensor::from_vector(b, {1, 3, 4}));

  // One batch holding both, plus an all-padding sample.
  std::vector<float> both = a, both_mask = mask_a;
  both.insert(both.end(), b.begin(), b.end());
  both.insert(both.end(), 12, huge);
  both_mask.insert(both_mask.end(), mask_b.begin(), mask_b.end());
  both_mask.insert(both_mask.end(), 3, 0.0f);
  OutlierAccumulator one_batch(1);
  one_batch.set_attention_mask(Tensor::from_vector(both_mask, {3, 3}));
  observe_activations(one_batch, 0, Tensor::from_vector(both, {3, 3, 4}));

  for (const OutlierMetrics& m : {two_batches.result(), one_batch.result()}) {
    EXPECT_NEAR(m.layers[0].ffn_output_rms_kurtosis, want, 1e-12);
    EXPECT_NEAR(m.layers[0].layer_output_rms_kurtosis, want, 1e-12);
    EXPECT_NEAR(m.max_rms_kurtosis, want, 1e-12);
  }
}

TEST(OutlierMetrics, AttentionSinkShareAndSpecialTokenMass) {
  // B = 2, H = 3, T = 4. Sample 0: tokens 0-2 valid, token 3 padding; sample 1: all valid. Special keys:
  // sample 0 tokens 0 and 2 (token 3 is marked too but is padding: it must not count), sample 1 tokens 0 and 3.
  constexpr int64_t kBatch = 2, kHeads = 3, kTokens = 4;
  std::vector<float> layer0(kBatch * kHeads * kTokens * kTokens, 0.0f);
  std::vector<float> layer1(layer0.size(), 0.0f);
  const auto set_row = [&](std::vector<float>& probs, int64_t b, int64_t h, int64_t q, const std::vector<float>& row) {
    std::copy(row.begin(), row.end(), probs.begin() + ((b * kHeads + h) * kTokens + q) * kTokens);
  };
  const auto set_rows = [&](std::vector<float>& probs, int64_t b, int64_t h, const std::vector<float>& row) {
    for (int64_t q = 0; q < kTokens; ++q) set_row(probs, b, h, q, row);
  };
  // Layer 0, per valid query row (the weight on the padded key 3 of sample 0 must not count):
  //   head 0: sample 0 0.5 + 0.25 = 0.75, sample 1 0.25 + 0.25 = 0.5  -> (3 * 0.75 + 4 * 0.5) / 7 = 4.25/7: a sink
  //   head 1: 0.125 everywhere                                         -> 0.125
  //   head 2: sample 0 0.5, sample 1 0.125                             -> (3 * 0.5 + 4 * 0.125) / 7 = 2/7 < 0.3
  // (head 2's per-sample means average to 0.3125, and counting the padded query row or key would also make it
  // a sink).
  set_rows(layer0, 0, 0, {0.5f, 0, 0.25f, 0.25f});
  set_rows(layer0, 1, 0, {0.25f, 0.25f, 0.25f, 0.25f});
  set_rows(layer0, 0, 1, {0.125f, 0.875f, 0, 0});
  set_rows(layer0, 1, 1, {0.125f, 0.875f, 0, 0});
  set_rows(layer0, 0, 2, {0.5f, 0.25f, 0, 0.25f});
  set_rows(layer0, 1, 2, {0.125f, 0.875f, 0, 0});
  // Layer 1: every head puts 0.5 on [CLS].
  for (int64_t b = 0; b < kBatch; ++b) {
    for (int64_t h = 0; h < kHeads; ++h) set_rows(layer1, b, h, {0.5f, 0.5f, 0, 0});
  }
  // The padded query row of sample 0 attends to [CLS] only, in every head of both layers.
  for (std::vector<float>* probs : {&layer0, &layer1}) {
    for (int64_t h = 0; h < kHeads; ++h) set_row(*probs, 0, h, 3, {1, 0, 0, 0});
  }
  OutlierAccumulator acc(2);
  acc.set_attention_mask(Tensor::from_vector<float>({1, 1, 1, 0, 1, 1, 1, 1}, {2, 4}));
  acc.set_special_tokens(Tensor::from_vector<float>({1, 0, 1, 1, 1, 0, 0, 1}, {2, 4}));
  acc.observe(TapSite{0, TapPoint::kAttentionProbs}, Tensor::from_vector(layer0, {kBatch, kHeads, kTokens, kTokens}));
  acc.observe(TapSite{1, TapPoint::kAttentionProbs}, Tensor::from_vector(layer1, {kBatch, kHeads, kTokens, kTokens}));
  const OutlierMetrics m = acc.result();

  const std::vector<double> head_mass = {4.25 / 7, 0.125, 2.0 / 7};
  ASSERT_LT(head_mass[2], kSinkMassThreshold);
  ASSERT_EQ(m.layers[0].head_special_token_mass.size(), 3u);
  for (size_t h = 0; h < head_mass.size(); ++h) {
    EXPECT_NEAR(m.layers[0].head_special_token_mass[h], head_mass[h], 1e-12) << "head " << h;
  }
  const double layer0_mass = (head_mass[0] + head_mass[1] + head_mass[2]) / 3;
  EXPECT_NEAR(m.layers[0].special_token_mass, layer0_mass, 1e-12);
  EXPECT_DOUBLE_EQ(m.layers[0].sink_share, 1.0 / 3);
  EXPECT_NEAR(m.layers[1].special_token_mass, 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(m.layers[1].sink_share, 1.0);
  EXPECT_DOUBLE_EQ(m.mean_sink_share, (1.0 / 3 + 1.0) / 2);
  EXPECT_DOUBLE_EQ(m.max_sink_share, 1.0);
  EXPECT_NEAR(m.mean_special_token_mass, (layer0_mass + 0.5) / 2, 1e-12);

  // Without special tokens every mass is 0.
  OutlierAccumulator none(1);
  none.set_attention_mask(Tensor::from_vector<float>({1, 1, 1, 0, 1, 1, 1, 1}, {2, 4}));
  none.set_special_tokens(Tensor());
  none.observe(TapSite{0, TapPoint::kAttentionProbs}, Tensor::from_vector(layer1, {kBatch, kHeads, kTokens, kTokens}));
  EXPECT_EQ(none.result().mean_special_token_mass, 0.0);
  EXPECT_EQ(none.result().max_sink_share, 0.0);
}

TEST(OutlierMetrics, JsonHoldsSummaryAndLayers) {
  OutlierAccumulator acc(2);
  observe_activations(acc, 1, Tensor::from_vector<float>({1, -1, 1, -1}, {1, 1, 4}));
  const Json j = acc.result().to_json();
  ASSERT_NE(j.get("avg_kurtosis"), nullptr);
  ASSERT_NE(j.get("max_ffn_output_inf_norm"), nullptr);
  for (const char* key : {"avg_rms_kurtosis", "max_rms_kurtosis", "mean_sink_share", "max_sink_share",
                          "mean_special_token_mass"}) {
    EXPECT_NE(j.get(key), nullptr) << key;
  }
  ASSERT_NE(j.get("layers"), nullptr);
  ASSERT_EQ(j.get("layers")->as_array().size(), 2u);
  const Json& layer = j.get("layers")->as_array()[1];
  EXPECT_DOUBLE_EQ(layer.get("layer_output_kurtosis")->as_number(), 1.0);
  EXPECT_DOUBLE_EQ(layer.get("layer_output_rms_kurtosis")->as_number(), 1.0);
  for (const char* key : {"ffn_output_rms_kurtosis", "sink_share", "special_token_mass", "head_special_token_mass"}) {
    EXPECT_NE(layer.get(key), nullptr) << key;
  }
}

// ---- evaluate() and the trainer on a tiny model ----

const MlmVocab kVocab{/*size=*/45, /*pad=*/0, /*unk=*/1, /*cls=*/2, /*sep=*/3, /*mask=*/4};

class TinyModel : public test_support::TempDirTest {
 protected:
  TinyModel() : TempDirTest("outlier_metrics") {}

  void SetUp() override {
    TempDirTest::SetUp();
    ShardWriter writer;
    ASSERT_TRUE(writer.open(path("valid.zst"), kVocab.size).ok());
    for (uint32_t d = 0; d < 30; ++d) {
      std::vector<uint32_t> ids;
      for (uint32_t i = 0; i < 10 + (d * 7) % 40; ++i) ids.push_back(5 + (d + 3 * i) % 40);
      ASSERT_TRUE(writer.add_document(ids).ok());
    }
    ASSERT_TRUE(writer.close().ok());
  }

  static BertConfig model_config() { return test_support::small_bert_config(kVocab.size, 32, 2, 32); }

  DataLoader loader() {
    DataLoaderOptions options;
    options.max_seq_len = 32;
    options.batch_size = 4;
    options.shuffle = false;
    return *DataLoader::open({path("valid.zst")}, kVocab, options);
  }
};

TEST_F(TinyModel, EvaluateGivesPerplexityAndOutlierMetrics) {
  BertForMaskedLM model(model_config(), /*init_seed=*/5);
  DataLoader validation = loader();
  const PerplexityResult perplexity = evaluate_perplexity(model, validation, 3);
  const EvalResult eval = evaluate(model, validation, 3);
  EXPECT_DOUBLE_EQ(eval.perplexity.perplexity, perplexity.perplexity);
  EXPECT_EQ(eval.perplexity.batches, 3);
  const OutlierMetrics& m = eval.outliers;
  ASSERT_EQ(m.layers.size(), 2u);
  EXPECT_GT(m.samples, 0);
  EXPECT_LE(m.samples, 12);
  for (const LayerOutlierMetrics& l : m.layers) {
    EXPECT_GT(l.ffn_output_kurtosis, 1.0);  // kurtosis is at least 1 for any distribution
    EXPECT_GT(l.layer_output_kurtosis, 1.0);
    EXPECT_GT(l.ffn_output_inf_norm, 0.0);
    EXPECT_GE(l.ffn_output_inf_norm, l.ffn_output_mean_sample_inf_norm);
    EXPECT_EQ(l.attention_dead_row_fraction, 0.0);  // plain softmax never gives an all-zero row
    for (const double rms_kurtosis : {l.ffn_output_rms_kurtosis, l.layer_output_rms_kurtosis}) {
      EXPECT_GE(rms_kurtosis, 1.0);
      EXPECT_LE(rms_kurtosis, 32.0);  // C
    }
    // A fresh model attends almost uniformly, and [CLS] and [SEP] are a few of up to 32 tokens: some mass, far
    // from all of it (so the special tokens were found, and not every token was taken for one).
    EXPECT_EQ(l.head_special_token_mass.size(), 2u);
    EXPECT_GT(l.special_token_mass, 0.02);
    EXPECT_LT(l.special_token_mass, 0.5);
  }
  EXPECT_GE(m.max_kurtosis, m.avg_kurtosis);
  EXPECT_TRUE(std::isfinite(m.max_layer_output_inf_norm));
  // The probe is cleared: a later forward pass must not call the destroyed accumulator.
  const MlmBatch batch = validation.next();
  model.forward(batch.input_ids, batch.token_type_ids, batch.attention_mask);
}

TEST_F(TinyModel, StrongClippingKillsEveryAttentionRow) {
  // gamma = -0.5, zeta = 1: a probability survives only above 0.5 / 1.5 = 1/3, while a freshly initialised
  // model attends almost uniformly over up to 32 tokens.
  BertConfig c = model_config();
  c.attention = AttentionVariant::kClippedSoftmax;
  c.clip_gamma = -0.5f;
  BertForMaskedLM model(c, /*init_seed=*/5);
  DataLoader validation = loader();
  const OutlierMetrics m = evaluate(model, validation, 2).outliers;
  EXPECT_GT(m.mean_dead_row_fraction, 0.9);
  EXPECT_GT(m.layers[0].attention_zero_fraction, 0.9);
}

TEST_F(TinyModel, TrainerLogsOutlierMetricsAndWarnsAboutDeadRows) {
  TrainerConfig t;
  t.model = model_config();
  t.model.attention = AttentionVariant::kClippedSoftmax;
  t.model.clip_gamma = -0.5f;
  t.vocab = kVocab;
  t.train_data = path("valid.zst");
  t.validation_data = path("valid.zst");
  t.run_dir = path("run");
  t.seq_len = 32;
  t.batch_size = 4;
  t.steps = 2;
  t.warmup_steps = 0;
  t.eval_interval = 0;
  t.eval_batches = 2;
  t.checkpoint_interval = 0;
  testing::internal::CaptureStdout();
  ASSERT_TRUE(train_bert(t).ok());
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("warning"), std::string::npos) << out;
  EXPECT_NE(out.find("Q and K get no gradient"), std::string::npos) << out;
  EXPECT_NE(out.find("--attention_init reference with an alpha warm-up"), std::string::npos) << out;  // the remedy

  const absl::StatusOr<std::string> log = read_file(path("run/metrics.jsonl"));
  ASSERT_TRUE(log.ok());
  bool found = false;
  for (absl::string_view line : absl::StrSplit(*log, '\n', absl::SkipEmpty())) {
    const Json record = *Json::parse(line);
    if (record.get("val_perplexity") == nullptr) continue;
    found = true;
    for (const char* key : {"val_avg_kurtosis", "val_max_kurtosis", "val_max_ffn_output_inf_norm",
                            "val_max_ffn_output_plus_residual_inf_norm", "val_max_layer_output_inf_norm",
                            "val_dead_row_fraction", "val_avg_rms_kurtosis", "val_max_rms_kurtosis",
                            "val_sink_share", "val_max_sink_share", "val_special_token_mass"}) {
      EXPECT_NE(record.get(key), nullptr) << key;
    }
    EXPECT_GT(record.get("val_dead_row_fraction")->as_number(), 0.5);
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace bertforge
