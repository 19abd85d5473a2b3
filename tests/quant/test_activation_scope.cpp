// Activation quantization as int8 kernels execute it (quant/quantized_model.h: the linear_inputs scope, static per
// tensor or dynamic per token) and token-wise clipping in PTQ (quant/ptq.h), on the random 2-layer BERT of
// tests/support/synthetic_bert.h:
//   - linear_inputs: the residual branch reads the FP LayerNorm output (only the Linears see quantized inputs), so it
//     is not the all_taps scheme; fake quantization and int8 execution agree (per tensor and per token, with and
//     without smooth migration folded into the model)
//   - the activation spec's scope and granularity round-trip through JSON; older files read as all_taps/per_tensor;
//     combinations that cannot run are refused with the reason
//   - token-wise clipping replaces exactly the Linear inputs' ranges, never with a worse output error than min-max
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "ops/elementwise.h"
#include "quant/channel_fold.h"
#include "quant/group_statistics.h"
#include "quant/migration.h"
#include "quant/ptq.h"
#include "quant/quantized_model.h"
#include "tests/support/synthetic_bert.h"

namespace bertforge::quant {
namespace {

// ||a - b|| / ||a|| (Frobenius).
double relative_rms(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_float_vector(), y = b.to_float_vector();
  double signal = 0, noise = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    signal += double{x[i]} * x[i];
    noise += (double{x[i]} - y[i]) * (double{x[i]} - y[i]);
  }
  return std::sqrt(noise / signal);
}

// max |a - b| / max |a|.
double relative_difference(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_float_vector(), y = b.to_float_vector();
  double top = 0, diff = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    top = std::max(top, std::fabs(double{x[i]}));
    diff = std::max(diff, std::fabs(double{x[i]} - y[i]));
  }
  return diff / top;
}

class ActivationScopeTest : public test_support::SyntheticBertTest {
 protected:
  ActivationScopeTest() : SyntheticBertTest("activation_scope") {}

  PtqResult ptq(const BertForMaskedLM& model, ActivationGranularity granularity,
                ActivationClipping clipping = ActivationClipping::kNone) {
    PtqOptions o;
    o.weights.granularity = Granularity::kPerChannel;
    o.scope = ActivationScope::kLinearInputs;
    o.granularity = granularity;
    o.clipping = clipping;
    o.calibration.batches = 4;
    DataLoader calibration = loader("train.zst", /*shuffle=*/true);
    absl::StatusOr<PtqResult> result = quantize_ptq(model, calibration, o);
    BF_CHECK(result.ok(), result.status().ToString());
    return std::move(*result);
  }

  QuantizedBert build(const PtqResult& result, QuantizedExecution execution) {
    absl::StatusOr<QuantizedBert> q = build_quantized_bert(result.state, config(), result.activations, {execution});
    BF_CHECK(q.ok(), q.status().ToString());
    return std::move(*q);
  }

  Tensor encode(const BertForMaskedLM& model) {
    DataLoader validation = loader("validation.zst", false);
    const MlmBatch batch = validation.next();
    autograd::NoGradGuard no_grad;
    return model.encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
  }
};

TEST_F(ActivationScopeTest, OnlyTheLinearsReadQuantizedInputs) {
  const PtqResult result = ptq(*model_, ActivationGranularity::kPerTensor);
  QuantizedBert fake = build(result, QuantizedExecution::kFakeQuant);
  EXPECT_FALSE(fake.model->hook());  // no tap point is replaced
  EXPECT_TRUE(fake.model->layers[0]->attention_self.query.has_forward_override());
  // Record the taps: layer 1's residual sum minus its attention output is layer 0's output, which must be FP
  // (many distinct values, not the 256 of an 8-bit grid).
  std::vector<Tensor> seen(all_tap_sites(2).size());
  fake.model->set_hook([&](const TapSite& site, const Tensor& value) {
    seen[static_cast<size_t>(site.index())] = value.clone();
    return value;
  });
  encode(*fake.model);
  const Tensor layer0_output = seen[TapSite{0, TapPoint::kLayerOutput}.index()];
  const Tensor residual = sub(seen[TapSite{1, TapPoint::kAttentionOutputPlusResidual}.index()],
                              seen[TapSite{1, TapPoint::kAttentionOutput}.index()]);
  EXPECT_LE(relative_difference(layer0_output, residual), 1e-5);
  const std::vector<float> v = layer0_output.to_float_vector();
  EXPECT_GT(std::set<float>(v.begin(), v.end()).size(), 1000u);
}

TEST_F(ActivationScopeTest, FakeQuantAndInt8AgreePerTensorAndPerToken) {
  const std::unique_ptr<BertForMaskedLM> smoothed = clone_bert(*model_);
  MigrationOptions smooth;
  smooth.method = MigrationMethod::kSmooth;
  DataLoader calibration = loader("train.zst", true);
  ASSERT_TRUE(migrate_outliers(*smoothed, loader_batches(calibration, 4), smooth).ok());
  const Tensor fp = encode(*model_);
  for (const BertForMaskedLM* model : {model_.get(), smoothed.get()}) {
    for (ActivationGranularity granularity : {ActivationGranularity::kPerTensor, ActivationGranularity::kPerToken}) {
      const PtqResult result = ptq(*model, granularity);
      EXPECT_EQ(result.activations.has_ranges(), granularity == ActivationGranularity::kPerTensor);
      const Tensor fake = encode(*build(result, QuantizedExecution::kFakeQuant).model);
      const Tensor int8 = encode(*build(result, QuantizedExecution::kInt8).model);
      const double agreement = relative_rms(fake, int8), error = relative_rms(fp, fake);
      std::printf("%-8s %-10s relative RMS: int8 vs fake-quant %.2e, fake-quant vs FP %.2e\n",
                  model == model_.get() ? "plain" : "smoothed", activation_granularity_name(granularity), agreement,
                  error);
      // The same codes and exact integer sums, but the FP32 rounding order differs, and an ulp can move a later
      // input across a rounding step (a code of a token; seen: 2e-7, and 6e-4 for smoothed per-token), far below
      // the quantization error itself.
      EXPECT_LT(agreement, 5e-3);
      EXPECT_LT(agreement, 0.2 * error);
    }
  }
}

TEST_F(ActivationScopeTest, SpecRoundTripsAndRefusesWhatCannotRun) {
  const PtqResult per_token = ptq(*model_, ActivationGranularity::kPerToken);
  const Json json = per_token.activations.to_json();
  EXPECT_EQ(json.get("calibration"), nullptr);  // dynamic: no ranges
  absl::StatusOr<ActivationQuantSpec> back = ActivationQuantSpec::from_json(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->scope, ActivationScope::kLinearInputs);
  EXPECT_EQ(back->granularity, ActivationGranularity::kPerToken);
  EXPECT_EQ(back->bits, 8);

  // An older file: no scope, no granularity.
  absl::StatusOr<Json> old = Json::parse(R"({"format_version": 1, "activation_bits": 0, "exclude": []})");
  ASSERT_TRUE(old.ok());
  back = ActivationQuantSpec::from_json(*old);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->scope, ActivationScope::kAllTaps);
  EXPECT_EQ(back->granularity, ActivationGranularity::kPerTensor);

  const auto refused = [](const char* text, const char* reason) {
    absl::StatusOr<Json> j = Json::parse(text);
    ASSERT_TRUE(j.ok());
    const absl::StatusOr<ActivationQuantSpec> spec = ActivationQuantSpec::from_json(*j);
    ASSERT_FALSE(spec.ok()) << text;
    EXPECT_NE(spec.status().message().find(reason), std::string::npos) << spec.status();
  };
  refused(R"({"format_version": 1, "activation_bits": 8, "scope": "all_taps", "granularity": "per_token"})",
          "need the linear_inputs scope");
  refused(R"({"format_version": 1, "activation_bits": 8, "scope": "everything"})", "all_taps or linear_inputs");
  refused(R"({"format_version": 1, "activation_bits": 8, "scope": "linear_inputs", "granularity": "per_token",
              "calibration": {"observer": "minmax", "batches": 1, "ranges": {}}})", "no ranges");
  refused(R"({"format_version": 1, "activation_bits": 8, "scope": "linear_inputs", "exclude": ["gelu"],
              "granularity": "per_token"})", "exclusions");

  PtqOptions o;
  o.granularity = ActivationGranularity::kPerToken;  // with all_taps
  EXPECT_FALSE(o.validate().ok());
  o = PtqOptions{};
  o.clipping = ActivationClipping::kTokenwise;  // all_taps
  EXPECT_NE(o.validate().message().find("linear_inputs scope and per_tensor"), std::string::npos);
  o.scope = ActivationScope::kLinearInputs;
  EXPECT_TRUE(o.validate().ok()) << o.validate();
  o.granularity = ActivationGranularity::kPerToken;
  EXPECT_FALSE(o.validate().ok());
}

TEST_F(ActivationScopeTest, TokenwiseClippingReplacesTheLinearInputRanges) {
  const PtqResult minmax = ptq(*model_, ActivationGranularity::kPerTensor);
  const PtqResult clipped = ptq(*model_, ActivationGranularity::kPerTensor, ActivationClipping::kTokenwise);
  ASSERT_EQ(clipped.clipping.size(), 8u);  // 2 layers x 4 Linear inputs
  std::set<std::string> sites;
  for (const ClippingReport& c : clipped.clipping) {
    sites.insert(c.site);
    EXPECT_LE(c.result.fine_error, c.result.minmax_error) << c.site;
    const ActivationRange* range = clipped.activations.calibration.find(c.site);
    ASSERT_NE(range, nullptr) << c.site;
    EXPECT_EQ(range->min, c.result.range.min) << c.site;
    EXPECT_EQ(range->max, c.result.range.max) << c.site;
  }
  EXPECT_EQ(sites, (std::set<std::string>{"embeddings.layer_norm", "layer.0.context", "layer.0.attention_layer_norm",
                                          "layer.0.gelu", "layer.0.layer_output", "layer.1.context",
                                          "layer.1.attention_layer_norm", "layer.1.gelu"}));
  for (const auto& [name, range] : minmax.activations.calibration.ranges) {
    if (sites.count(name) != 0) continue;
    const ActivationRange* other = clipped.activations.calibration.find(name);
    ASSERT_NE(other, nullptr);
    EXPECT_EQ(other->min, range.min) << name;
    EXPECT_EQ(other->max, range.max) << name;
  }
  // It still runs in int8.
  build(clipped, QuantizedExecution::kInt8);
}

}  // namespace
}  // namespace bertforge::quant
