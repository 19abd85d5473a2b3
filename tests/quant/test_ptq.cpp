// PTQ W8A8 (quant/ptq.h) and quantized models (quant/quantized_model.h), on a random 2-layer BERT (init std 0.2, so
// activations span a few units and quantization noise reaches the logits) and a synthetic corpus:
//   - exactly the six encoder Linear weights per layer are quantized; the MLM head, transform dense included, is FP
//   - SQNR in closed form: a weight with one outlier row loses its small values per tensor, keeps them per channel
//   - W8A8 perplexity stays within 1% of FP (0.34% seen: 99.10 -> 98.76); 4-bit weights move it further from FP
//     than 8-bit ones (a random model, so "worse" is the distance from FP, not the direction)
//   - the checkpoint (weights + activation spec) round-trips and evaluates to the in-memory model's perplexity,
//     bit for bit; detection by metadata; a missing spec, bad options and typos in exclusions are errors
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "quant/ptq.h"
#include "quant/quantized_model.h"
#include "tests/support/synthetic_bert.h"
#include "tests/support/test_support.h"
#include "train/evaluation.h"

namespace bertforge::quant {
namespace {

class Ptq : public test_support::SyntheticBertTest {
 protected:
  Ptq() : SyntheticBertTest("ptq") {}

  double fp_perplexity() {
    DataLoader validation = loader("validation.zst", false);
    return evaluate_perplexity(*model_, validation).perplexity;
  }

  PtqResult ptq(const PtqOptions& options) {
    DataLoader calibration = loader("train.zst", /*shuffle=*/true);
    absl::StatusOr<PtqResult> result = quantize_ptq(*model_, calibration, options);
    BF_CHECK(result.ok(), result.status().ToString());
    return std::move(*result);
  }

  double quantized_perplexity(const PtqResult& result) {
    absl::StatusOr<QuantizedBert> q = build_quantized_bert(result.state, config(), result.activations);
    BF_CHECK(q.ok(), q.status().ToString());
    DataLoader validation = loader("validation.zst", false);
    return evaluate_perplexity(*q->model, validation).perplexity;
  }

  static PtqOptions options(int weight_bits, int activation_bits,
                            Granularity granularity = Granularity::kPerTensor) {
    PtqOptions o;
    o.weights.bits = weight_bits;
    o.weights.granularity = granularity;
    o.activation_bits = activation_bits;
    o.calibration.batches = 4;
    return o;
  }

};

TEST_F(Ptq, QuantizesTheSixEncoderLinearWeightsOfEveryLayerAndNothingElse) {
  EXPECT_TRUE(is_ptq_weight("bert.encoder.layer.0.attention.self.query.weight"));
  EXPECT_TRUE(is_ptq_weight("bert.encoder.layer.11.output.dense.weight"));
  EXPECT_FALSE(is_ptq_weight("bert.encoder.layer.0.output.dense.bias"));
  EXPECT_FALSE(is_ptq_weight("bert.encoder.layer.0.attention.self.gate.weight"));
  EXPECT_FALSE(is_ptq_weight("bert.encoder.layer.x.output.dense.weight"));
  EXPECT_FALSE(is_ptq_weight("cls.predictions.transform.dense.weight"));
  EXPECT_FALSE(is_ptq_weight("bert.embeddings.word_embeddings.weight"));

  const PtqResult result = ptq(options(8, 8));
  ASSERT_EQ(result.state.quantized.size(), 12u);
  ASSERT_EQ(result.weights.size(), 12u);
  EXPECT_EQ(result.state.quantized.size() + result.state.fp.size(), model_->named_parameters().size());
  EXPECT_NE(result.state.find_fp("cls.predictions.transform.dense.weight"), nullptr);
  for (const auto& [name, qw] : result.state.quantized) {
    EXPECT_EQ(qw.scheme, ptq_default_weight_scheme()) << name;
  }
  // One range per tap site: 2 for the embeddings, 14 per layer.
  EXPECT_EQ(result.activations.calibration.ranges.size(), 2u + 2u * 14u);
  EXPECT_EQ(result.activations.bits, 8);
}

// W (4,K): row 0 is the outlier, every element +-127 (exact at any scale that fits it); rows 1..3 alternate
// 1.0 and 0.3. Per tensor s = 127/127 = 1: 1.0 is exact, 0.3 rounds to 0 (error 0.3^2 each). Per channel the
// small rows get s = 1/127: 0.3 * 127 = 38.1 -> 38, error (0.1/127)^2 each.
TEST_F(Ptq, PerChannelSqnrBeatsPerTensorOnAWeightWithOneOutlierRow) {
  constexpr int64_t N = 4, K = 16;
  std::vector<float> w(N * K);
  for (int64_t k = 0; k < K; ++k) w[k] = k % 2 == 0 ? 127.0f : -127.0f;
  for (int64_t n = 1; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) w[n * K + k] = k % 2 == 0 ? 1.0f : 0.3f;
  }
  const Tensor W = Tensor::from_vector(w, {N, K});
  const double small = (N - 1) * K / 2.0;  // elements equal to 0.3 (and as many equal to 1.0)
  const double signal = K * 127.0 * 127.0 + small * (1.0 + 0.09);
  const double per_tensor = 10.0 * std::log10(signal / (small * 0.09));
  const double per_channel = 10.0 * std::log10(signal / (small * (0.1 / 127) * (0.1 / 127)));

  QuantScheme scheme = ptq_default_weight_scheme();
  EXPECT_NEAR(sqnr_db(W, fake_quantize_weight(W, scheme)), per_tensor, 1e-3);
  scheme.granularity = Granularity::kPerChannel;
  EXPECT_NEAR(sqnr_db(W, fake_quantize_weight(W, scheme)), per_channel, 1e-2);
  EXPECT_GT(per_channel, per_tensor + 40.0);  // about 102 dB vs 51 dB
  EXPECT_TRUE(std::isinf(sqnr_db(W, W)));
}

TEST_F(Ptq, W8A8PerplexityIsCloseToFpAndFourBitWeightsAreWorse) {
  const double fp = fp_perplexity();
  const double w8a8 = quantized_perplexity(ptq(options(8, 8)));
  const double w4a8 = quantized_perplexity(ptq(options(4, 8)));
  const double w8 = quantized_perplexity(ptq(options(8, 0)));
  const double w4 = quantized_perplexity(ptq(options(4, 0)));
  std::printf("perplexity FP %.4f  W8A8 %.4f  W4A8 %.4f  W8 %.4f  W4 %.4f\n", fp, w8a8, w4a8, w8, w4);
  EXPECT_NEAR(w8a8 / fp, 1.0, 0.01);
  EXPECT_GT(std::fabs(w4 - fp), std::fabs(w8 - fp));
  EXPECT_GT(std::fabs(w4a8 - fp), std::fabs(w8a8 - fp));
}

TEST_F(Ptq, EightBitSqnrIsAboutFortyDbAndPerChannelIsNotWorse) {
  const PtqResult per_tensor = ptq(options(8, 0));
  const PtqResult per_channel = ptq(options(8, 0, Granularity::kPerChannel));
  for (size_t i = 0; i < per_tensor.weights.size(); ++i) {
    // Each 8-bit code carries ~6 dB; a Gaussian-like weight with max ~4 sigma keeps ~38-42 dB.
    EXPECT_GT(per_tensor.weights[i].sqnr_db, 30.0) << per_tensor.weights[i].name;
    EXPECT_GE(per_channel.weights[i].sqnr_db, per_tensor.weights[i].sqnr_db - 0.5) << per_tensor.weights[i].name;
  }
}

TEST_F(Ptq, CheckpointRoundTripsAndEvaluatesToTheInMemoryPerplexity) {
  PtqOptions o = options(8, 8, Granularity::kPerChannel);
  o.exclude = {"attention_probs"};
  const PtqResult result = ptq(o);
  const std::string file = path("model.safetensors");
  ASSERT_TRUE(save_quantized_bert(file, result.state, result.activations).ok());
  EXPECT_TRUE(std::filesystem::exists(path("model.activations.json")));
  EXPECT_EQ(activation_spec_path(file), path("model.activations.json"));

  ASSERT_TRUE(*is_quantized_checkpoint(file));
  ASSERT_TRUE(save_safetensors(*model_, path("fp.safetensors")).ok());
  EXPECT_FALSE(*is_quantized_checkpoint(path("fp.safetensors")));

  absl::StatusOr<LoadedQuantizedBert> loaded = load_quantized_bert(file, config());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->spec.bits, 8);
  EXPECT_EQ(loaded->spec.exclude, o.exclude);
  ASSERT_EQ(loaded->spec.calibration.ranges.size(), result.activations.calibration.ranges.size());
  for (size_t i = 0; i < result.activations.calibration.ranges.size(); ++i) {
    EXPECT_EQ(loaded->spec.calibration.ranges[i].second.min, result.activations.calibration.ranges[i].second.min);
    EXPECT_EQ(loaded->spec.calibration.ranges[i].second.max, result.activations.calibration.ranges[i].second.max);
  }
  EXPECT_NE(loaded->bert.describe(loaded->spec).find("int8 symmetric per_channel (12 tensors)"), std::string::npos)
      << loaded->bert.describe(loaded->spec);
  DataLoader validation = loader("validation.zst", false);
  const PerplexityResult from_file = evaluate_perplexity(*loaded->bert.model, validation);
  EXPECT_EQ(from_file.perplexity, quantized_perplexity(result));

  // A weight file without its activation spec is refused, naming the spec.
  std::filesystem::remove(path("model.activations.json"));
  const absl::StatusOr<LoadedQuantizedBert> orphan = load_quantized_bert(file, config());
  ASSERT_FALSE(orphan.ok());
  EXPECT_NE(orphan.status().message().find("model.activations.json"), std::string::npos) << orphan.status();
}

TEST_F(Ptq, WeightOnlyQuantizationHasNoRangesAndNoHook) {
  const PtqResult result = ptq(options(6, 0));
  EXPECT_FALSE(result.activations.quantized());
  EXPECT_TRUE(result.activations.calibration.ranges.empty());
  absl::StatusOr<QuantizedBert> q = build_quantized_bert(result.state, config(), result.activations);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_FALSE(q->activations.has_value());
  EXPECT_FALSE(static_cast<bool>(q->model->hook()));
  absl::StatusOr<ActivationQuantSpec> spec = ActivationQuantSpec::from_json(result.activations.to_json());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->bits, 0);
}

TEST_F(Ptq, BadOptionsAreErrors) {
  DataLoader calibration = loader("train.zst", true);
  PtqOptions o = options(9, 8);
  EXPECT_EQ(quantize_ptq(*model_, calibration, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = options(8, 1);
  EXPECT_EQ(quantize_ptq(*model_, calibration, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = options(8, 8);
  o.weights.symmetric = false;
  EXPECT_EQ(quantize_ptq(*model_, calibration, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = options(8, 8);
  o.calibration.batches = 0;
  EXPECT_EQ(quantize_ptq(*model_, calibration, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = options(8, 8);
  o.exclude = {"atention_probs"};
  const absl::Status typo = quantize_ptq(*model_, calibration, o).status();
  EXPECT_NE(typo.message().find("atention_probs"), std::string::npos) << typo;

  Json bad = Json::object();
  bad.set("format_version", 1);
  bad.set("activation_bits", 8);  // quantized, but no calibration ranges
  EXPECT_FALSE(ActivationQuantSpec::from_json(bad).ok());
}

}  // namespace
}  // namespace bertforge::quant
