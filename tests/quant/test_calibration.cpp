// Calibration and fake-quantized evaluation (quant/calibration.h) on a tiny random BERT and a synthetic corpus:
//   - min-max calibration's ranges equal a direct min/max over the same activations, collected by an observing
//     hook (and, at the probe points, by a probe), for every tap site; the table round-trips through JSON
//   - running min-max calibration equals the recurrence over the per-batch extremes
//   - fake quantization at 8 bits moves the loss and logits a little, at 4 bits more (weak but real); excluding
//     every point gives the FP result bit for bit
//   - bad exclusions, missing ranges and grad mode are errors; the model's hook is restored afterwards
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "quant/calibration.h"
#include "tests/support/synthetic_bert.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

// The shared synthetic corpus and model config; every test builds its own model.
class Calibration : public test_support::SyntheticBertTest {
 protected:
  Calibration() : SyntheticBertTest("calibration") {}

  DataLoader train_loader() { return loader("train.zst", /*shuffle=*/false, /*batch_size=*/4); }
};

// Per-site extremes of every batch, collected by an observing hook.
struct Collected {
  std::map<std::string, std::vector<std::pair<float, float>>> per_batch;  // name -> (min, max) per batch
  std::map<std::string, std::pair<float, float>> probed;                 // probe points, over all batches
};

Collected collect(BertForMaskedLM& model, DataLoader& loader, int64_t batches) {
  Collected c;
  autograd::NoGradGuard no_grad;
  model.eval();
  model.set_hook([&c](const TapSite& site, const Tensor& value) {
    const std::vector<float> v = value.to_float_vector();
    c.per_batch[site.name()].emplace_back(*std::min_element(v.begin(), v.end()),
                                          *std::max_element(v.begin(), v.end()));
    return value;
  });
  model.set_probe([&c](const TapSite& site, const Tensor& value) {
    const std::vector<float> v = value.to_float_vector();
    auto [it, fresh] = c.probed.try_emplace(site.name(), *std::min_element(v.begin(), v.end()),
                                            *std::max_element(v.begin(), v.end()));
    if (!fresh) {
      it->second.first = std::min(it->second.first, *std::min_element(v.begin(), v.end()));
      it->second.second = std::max(it->second.second, *std::max_element(v.begin(), v.end()));
    }
  });
  for (int64_t b = 0; b < batches; ++b) {
    const MlmBatch batch = loader.next();
    model.encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
  }
  model.set_hook({});
  model.set_probe({});
  model.train();
  return c;
}

TEST_F(Calibration, MinMaxRangesEqualTheActivationsExtremes) {
  BertForMaskedLM model(config(), 1);
  DataLoader a = train_loader(), b = train_loader();
  const Collected direct = collect(model, a, 3);

  CalibrationOptions options;
  options.batches = 3;
  const absl::StatusOr<ActivationRangeTable> table = calibrate_activations(model, b, options);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_TRUE(model.is_training());  // restored
  EXPECT_FALSE(model.hook());
  EXPECT_EQ(table->observer, "minmax");
  EXPECT_EQ(table->batches, 3);

  const std::vector<TapSite> sites = all_tap_sites(2);
  ASSERT_EQ(table->ranges.size(), sites.size());
  for (size_t i = 0; i < sites.size(); ++i) {
    const std::string name = sites[i].name();
    EXPECT_EQ(table->ranges[i].first, name);
    const std::vector<std::pair<float, float>>& batches = direct.per_batch.at(name);
    ASSERT_EQ(batches.size(), 3u);
    float lo = batches[0].first, hi = batches[0].second;
    for (const auto& [bmin, bmax] : batches) lo = std::min(lo, bmin), hi = std::max(hi, bmax);
    EXPECT_EQ(table->ranges[i].second.min, lo) << name;
    EXPECT_EQ(table->ranges[i].second.max, hi) << name;
    EXPECT_LT(lo, hi) << name;
  }
  // The probe points agree with what a probe sees.
  ASSERT_EQ(direct.probed.size(), 8u);
  for (const auto& [name, extremes] : direct.probed) {
    EXPECT_EQ(table->find(name)->min, extremes.first) << name;
    EXPECT_EQ(table->find(name)->max, extremes.second) << name;
  }

  // JSON round trip, exact.
  const absl::StatusOr<Json> parsed = Json::parse(table->to_json().dump());
  ASSERT_TRUE(parsed.ok());
  const absl::StatusOr<ActivationRangeTable> back = ActivationRangeTable::from_json(*parsed);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->ranges.size(), table->ranges.size());
  for (size_t i = 0; i < sites.size(); ++i) {
    EXPECT_EQ(back->ranges[i].first, table->ranges[i].first);
    EXPECT_EQ(back->ranges[i].second.min, table->ranges[i].second.min);
    EXPECT_EQ(back->ranges[i].second.max, table->ranges[i].second.max);
  }
  const Json reversed = *Json::parse(R"({"observer": "minmax", "batches": 1, "ranges": {"x": [2, 1]}})");
  EXPECT_FALSE(ActivationRangeTable::from_json(reversed).ok());
}

TEST_F(Calibration, RunningMinMaxFollowsTheBatches) {
  BertForMaskedLM model(config(), 2);
  DataLoader a = train_loader(), b = train_loader();
  const Collected direct = collect(model, a, 4);
  CalibrationOptions options;
  options.batches = 4;
  options.observer.kind = ObserverKind::kRunningMinMax;
  const absl::StatusOr<ActivationRangeTable> table = calibrate_activations(model, b, options);
  ASSERT_TRUE(table.ok()) << table.status();
  for (const auto& [name, range] : table->ranges) {
    const std::vector<std::pair<float, float>>& batches = direct.per_batch.at(name);
    double lo = batches[0].first, hi = batches[0].second;
    for (size_t t = 1; t < batches.size(); ++t) {
      lo = 0.9 * lo + (1 - 0.9) * batches[t].first;
      hi = 0.9 * hi + (1 - 0.9) * batches[t].second;
    }
    EXPECT_EQ(range.min, static_cast<float>(lo)) << name;
    EXPECT_EQ(range.max, static_cast<float>(hi)) << name;
  }
}

TEST_F(Calibration, FakeQuantizationCostsLittleAt8BitsAndMoreAt4) {
  BertForMaskedLM model(config(), 3);
  DataLoader train = train_loader(), validation = train_loader();
  CalibrationOptions options;
  options.batches = 4;
  const ActivationRangeTable table = *calibrate_activations(model, train, options);
  const PerplexityResult fp = evaluate_perplexity(model, validation, 6);
  ASSERT_GT(fp.scored_tokens, 0);

  const ActivationQuantizer q8 = *ActivationQuantizer::create(table, 2, {8, {}});
  const ActivationQuantizer q4 = *ActivationQuantizer::create(table, 2, {4, {}});
  const PerplexityResult r8 = evaluate_fake_quant_perplexity(model, validation, q8, 6);
  const PerplexityResult r4 = evaluate_fake_quant_perplexity(model, validation, q4, 6);
  EXPECT_FALSE(model.hook());  // removed after each evaluation
  EXPECT_EQ(r8.scored_tokens, fp.scored_tokens);
  const double d8 = std::fabs(r8.mean_loss - fp.mean_loss), d4 = std::fabs(r4.mean_loss - fp.mean_loss);
  EXPECT_GT(d8, 0.0);
  EXPECT_LT(d8, 0.02 * fp.mean_loss);
  EXPECT_GT(d4, d8);

  // The logits tell the same story, more sharply: mean |logit difference| grows by roughly 2^4 from 8 to 4 bits.
  autograd::NoGradGuard no_grad;
  model.eval();
  const MlmBatch batch = validation.next();
  const std::vector<float> plain = model.forward(batch.input_ids, {}, batch.attention_mask).logits.to_float_vector();
  auto mean_abs_diff = [&](const ActivationQuantizer& q) {
    const ScopedActivationHook hook(model, q.hook());
    const std::vector<float> got = model.forward(batch.input_ids, {}, batch.attention_mask).logits.to_float_vector();
    double sum = 0;
    for (size_t i = 0; i < got.size(); ++i) sum += std::fabs(got[i] - plain[i]);
    return sum / static_cast<double>(got.size());
  };
  const double e8 = mean_abs_diff(q8), e4 = mean_abs_diff(q4);
  EXPECT_GT(e8, 0.0);
  EXPECT_GT(e4, 4.0 * e8);

  // Excluding every point is the FP model, bit for bit; the MLM head never had a tap point.
  std::vector<std::string> every_point;
  for (const TapPointInfo& info : kTapPoints) every_point.push_back(info.name);
  const ActivationQuantizer none = *ActivationQuantizer::create(table, 2, {4, every_point});
  for (const TapSite& site : all_tap_sites(2)) EXPECT_EQ(none.params(site), nullptr);
  const ScopedActivationHook hook(model, none.hook());
  EXPECT_EQ(model.forward(batch.input_ids, {}, batch.attention_mask).logits.to_float_vector(), plain);
}

TEST_F(Calibration, ErrorsAreReported) {
  BertForMaskedLM model(config(), 4);
  DataLoader train = train_loader();
  CalibrationOptions options;
  options.batches = 0;
  EXPECT_FALSE(calibrate_activations(model, train, options).ok());
  options.batches = 1;
  options.observer.kind = ObserverKind::kMse;
  options.observer.bits = 4;
  const ActivationRangeTable table = *calibrate_activations(model, train, options);
  EXPECT_EQ(table.observer, "mse");

  // Exclusion by point and by full name; a name matching nothing is refused.
  const ActivationQuantizer q = *ActivationQuantizer::create(table, 2, {8, {"attention_scores", "layer.1.gelu"}});
  EXPECT_EQ(q.params({0, TapPoint::kAttentionScores}), nullptr);
  EXPECT_EQ(q.params({1, TapPoint::kGelu}), nullptr);
  EXPECT_NE(q.params({0, TapPoint::kGelu}), nullptr);
  EXPECT_NE(q.params({kEmbeddingsLayer, TapPoint::kEmbeddingSum}), nullptr);
  EXPECT_EQ(ActivationQuantizer::create(table, 2, {8, {"attention_score"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ActivationQuantizer::create(table, 3, {8, {}}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(ActivationQuantizer::create(table, 2, {1, {}}).ok());

  // The hook refuses grad mode (fake quantization has no gradient), and a previous hook comes back.
  int calls = 0;
  model.set_hook([&calls](const TapSite&, const Tensor& value) { ++calls; return value; });
  {
    const ScopedActivationHook scoped(model, q.hook());
    EXPECT_THROW(model.encode(Tensor::from_vector<int64_t>({2, 5, 6, 3}, {1, 4}), {}, {}), Error);
  }
  model.encode(Tensor::from_vector<int64_t>({2, 5, 6, 3}, {1, 4}), {}, {});
  EXPECT_EQ(calls, 2 + 2 * 14);
}

}  // namespace
}  // namespace bertforge
