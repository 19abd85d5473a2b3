// AWQ (quant/awq.h, awq_statistics.h) on a random 2-layer BERT (init std 0.2, hidden 32, FFN 64) and
// a synthetic corpus, and on all-MiniLM-L6-v2 when it is cached:
//   - statistics: mean |x| over real tokens only, a bounded reservoir sample
//   - calibration output MSE: per group of Linears sharing an input, scaled-only <= round-to-nearest, and per Linear
//     AWQ <= scaled-only (exact: alpha = 0 and clip 1 are in the grids); folding itself is tested in
//     test_channel_fold.cpp
//   - a model with an outlier input channel of attention.output.dense and output.dense: AWQ W4 hidden-state error
//     is below RTN W4's
//   - the written checkpoint (weights + folded multiplies + an FP activation spec) reloads and evaluates
//     bit for bit as the in-memory one
//   - MiniLM (skipped without .cache/minilm): W4 g128 SQNR of the last hidden state, AWQ above RTN
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "models/hf_checkpoint.h"
#include "quant/awq.h"
#include "quant/awq_statistics.h"
#include "quant/ptq.h"
#include "quant/quantized_model.h"
#include "tests/support/synthetic_bert.h"
#include "tests/support/test_support.h"

namespace bertforge::quant {
namespace {

// SQNR (dB) of `got` against `want`, both (B,T,C), over the positions where mask (B,T) is 1.
double hidden_sqnr_db(const Tensor& want, const Tensor& got, const Tensor& mask) {
  const std::vector<float> w = want.to_float_vector(), g = got.to_float_vector(), m = mask.to_float_vector();
  const size_t C = static_cast<size_t>(want.size(-1));
  double signal = 0, noise = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (m[i / C] == 0.0f) continue;
    signal += double(w[i]) * w[i];
    noise += (double(w[i]) - g[i]) * (double(w[i]) - g[i]);
  }
  return 10.0 * std::log10(signal / noise);
}

class Awq : public test_support::SyntheticBertTest {
 protected:
  Awq() : SyntheticBertTest("awq") {}

  static AwqOptions options(int bits, Granularity granularity = Granularity::kPerGroup, int64_t group = 16) {
    AwqOptions o;
    o.weights = {bits, /*symmetric=*/false, granularity, group};
    o.calibration_batches = 4;
    return o;
  }

  AwqResult awq(const AwqOptions& o) {
    DataLoader calibration = loader("train.zst", /*shuffle=*/true);
    absl::StatusOr<AwqResult> result = quantize_awq(*model_, calibration, o);
    BF_CHECK(result.ok(), result.status().ToString());
    return std::move(*result);
  }

  // The SQNR (dB) of the encoder output of `state` against the FP model's, on two validation batches.
  double validation_sqnr_db(const QuantizedStateDict& state) {
    absl::StatusOr<QuantizedBert> q = build_quantized_bert(state, config(), ActivationQuantSpec{});
    BF_CHECK(q.ok(), q.status().ToString());
    DataLoader validation = loader("validation.zst", false);
    autograd::NoGradGuard no_grad;
    double total = 0;
    for (int b = 0; b < 2; ++b) {
      const MlmBatch batch = validation.next();
      const Tensor want = model_->encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
      const Tensor got = q->model->encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
      total += hidden_sqnr_db(want, got, batch.attention_mask);
    }
    return total / 2;
  }

};

TEST(AwqStatistics, MeanAbsOverRealTokensAndABoundedReservoir) {
  AwqInputStatistics stats(/*channels=*/2, /*capacity=*/3, /*seed=*/1);
  // (1,4,2): rows (1,-2), (3,4), (100,100) at padding, (-5,6).
  stats.observe(Tensor::from_vector<float>({1, -2, 3, 4, 100, 100, -5, 6}, {1, 4, 2}),
                Tensor::from_vector<float>({1, 1, 0, 1}, {1, 4}));
  EXPECT_EQ(stats.rows_seen(), 3);
  EXPECT_EQ(stats.mean_abs(), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_EQ(stats.samples().to_float_vector(), (std::vector<float>{1, -2, 3, 4, -5, 6}));
  for (int i = 0; i < 50; ++i) stats.observe(Tensor::from_vector<float>({7, 7}, {1, 1, 2}), Tensor());
  EXPECT_EQ(stats.rows_seen(), 53);
  EXPECT_EQ(stats.samples().shape(), (Shape{3, 2}));  // memory stays at the capacity
}

TEST_F(Awq, CalibrationMseIsNeverWorseThanRoundToNearest) {
  for (const AwqOptions& o : {options(4), options(8, Granularity::kPerChannel)}) {
    const AwqResult result = awq(o);
    ASSERT_EQ(result.linears.size(), 12u);
    EXPECT_GT(result.calibration_tokens, 0);
    int improved = 0;
    // Per group (query/key/value share one search): scaled <= RTN; per Linear: AWQ (clipped) <= scaled.
    std::map<std::string, std::pair<double, double>> group_mse;  // "<layer>.<group>" -> (rtn, scaled)
    for (const AwqLinearReport& r : result.linears) {
      EXPECT_LE(r.awq_mse, r.scaled_mse) << r.name;
      EXPECT_GT(r.rtn_mse, 0.0) << r.name;
      improved += r.awq_mse < r.rtn_mse ? 1 : 0;
      const std::string layer = r.name.substr(0, r.name.find('.', std::string("bert.encoder.layer.").size()));
      auto& [rtn, scaled] = group_mse[absl::StrCat(layer, ".", fold_group_name(r.group))];
      rtn += r.rtn_mse;
      scaled += r.scaled_mse;
      std::printf("%-50s %-11s alpha %.2f clip [%.2f %.2f] mse rtn %.3e scaled %.3e awq %.3e\n", r.name.c_str(),
                  fold_group_name(r.group), r.alpha, r.clip_min, r.clip_max, r.rtn_mse, r.scaled_mse, r.awq_mse);
    }
    EXPECT_EQ(group_mse.size(), 8u);  // 2 layers x 4 groups
    for (const auto& [group, mse] : group_mse) EXPECT_LE(mse.second, mse.first * (1 + 1e-12)) << group;
    // Most Linears improve at 4 bits and at 8 bits.
    EXPECT_GE(improved, 4) << o.weights.str();
    EXPECT_EQ(result.state.quantized.size(), 12u);
  }
}

TEST_F(Awq, BeatsRoundToNearestOnAnOutlierInputChannel) {
  // Make context channel 3 and GELU channel 5 of every layer 30x larger. The value trick is exact (value row
  // and bias x30, attention.output.dense column /30); the GELU one nearly so (intermediate row x30, output.dense
  // column /30, GELU being ~linear for large inputs). RTN then loses those columns' now tiny weights.
  {
    autograd::NoGradGuard no_grad;
    for (const auto& layer : model_->layers) {
      const auto scale_row = [](Tensor& t, int64_t row, float f) {
        float* p = t.data<float>();
        const int64_t K = t.dim() == 2 ? t.size(1) : 1;
        for (int64_t k = 0; k < K; ++k) p[row * K + k] *= f;
      };
      const auto scale_column = [](Tensor& t, int64_t column, float f) {
        float* p = t.data<float>();
        for (int64_t n = 0; n < t.size(0); ++n) p[n * t.size(1) + column] *= f;
      };
      scale_row(layer->attention_self.value.weight, 3, 30.0f);
      scale_row(layer->attention_self.value.bias, 3, 30.0f);
      scale_column(layer->attention_output_dense.weight, 3, 1.0f / 30.0f);
      scale_row(layer->intermediate_dense.weight, 5, 30.0f);
      scale_row(layer->intermediate_dense.bias, 5, 30.0f);
      scale_column(layer->output_dense.weight, 5, 1.0f / 30.0f);
    }
  }
  const AwqOptions o = options(4);
  const AwqResult result = awq(o);
  const double awq_db = validation_sqnr_db(result.state);
  const double rtn_db = validation_sqnr_db(quantize_rtn(*model_, o.weights));
  AwqOptions clip_only = o;
  clip_only.search_scales = false;
  const double clip_db = validation_sqnr_db(awq(clip_only).state);
  std::printf("outlier model, W4 g16 hidden-state SQNR: RTN %.2f dB, clip only %.2f dB, AWQ %.2f dB\n", rtn_db,
              clip_db, awq_db);
  EXPECT_GT(awq_db, rtn_db + 1.0);
  for (const AwqLinearReport& r : result.linears) {
    if (r.name.find("attention.output.dense") != std::string::npos) {
      EXPECT_EQ(r.group, FoldGroup::kContext);
      EXPECT_GT(r.alpha, 0.0) << r.name;  // the outlier channel is scaled
    }
    if (r.name.find("layer.0.output.dense") != std::string::npos) {
      EXPECT_EQ(r.group, FoldGroup::kGeluOutput);
      EXPECT_GT(r.alpha, 0.0) << r.name;
    }
  }
}

TEST_F(Awq, CheckpointReloadsAndEvaluatesIdentically) {
  const AwqResult result = awq(options(4));
  const std::string file = path("model.safetensors");
  ASSERT_TRUE(save_quantized_bert(file, result.state, ActivationQuantSpec{}).ok());
  absl::StatusOr<LoadedQuantizedBert> loaded = load_quantized_bert(file, config());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->spec.quantized());
  const std::string described = loaded->bert.describe(loaded->spec);
  EXPECT_NE(described.find("int4 asymmetric per_group(16) (12 tensors)"), std::string::npos) << described;
  EXPECT_NE(described.find("folded channel scales in"), std::string::npos) << described;
  absl::StatusOr<QuantizedBert> in_memory = build_quantized_bert(result.state, config(), ActivationQuantSpec{});
  ASSERT_TRUE(in_memory.ok()) << in_memory.status();
  DataLoader v1 = loader("validation.zst", false), v2 = loader("validation.zst", false);
  EXPECT_EQ(evaluate_perplexity(*loaded->bert.model, v1).perplexity,
            evaluate_perplexity(*in_memory->model, v2).perplexity);

  // A malformed scale tensor is refused, naming it.
  QuantizedStateDict bad = result.state;
  bad.fp.emplace_back("bert.encoder.layer.7.folded.gelu_output", Tensor::ones({64}));
  const absl::StatusOr<QuantizedBert> refused = build_quantized_bert(bad, config(), ActivationQuantSpec{});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("layer.7.folded.gelu_output"), std::string::npos) << refused.status();
}

TEST_F(Awq, OptionsAreValidated) {
  AwqOptions o = options(4, Granularity::kPerTensor);
  EXPECT_FALSE(o.validate().ok());
  o = options(4);
  o.min_clip = 0;
  EXPECT_FALSE(o.validate().ok());
  o = options(9);
  EXPECT_FALSE(o.validate().ok());
}

// ---- all-MiniLM-L6-v2 --------------------------------------------------------------------------------------

TEST(AwqMiniLm, W4G128HiddenStateErrorIsBelowRoundToNearest) {
  const std::string dir = test_support::source_path(".cache/minilm");
  if (!std::filesystem::exists(dir + "/model.safetensors")) {
    GTEST_SKIP() << "all-MiniLM-L6-v2 is not in " << dir << ": run scripts/fetch_minilm.sh";
  }
  const absl::StatusOr<BertConfig> config = BertConfig::load(dir + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::unique_ptr<BertForMaskedLM>> model = load_hf_bert(dir + "/model.safetensors", *config);
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->eval();
  absl::StatusOr<SafetensorsFile> fixture =
      read_safetensors(test_support::source_path("tests/models/fixtures/minilm_hidden_states.safetensors"));
  ASSERT_TRUE(fixture.ok()) << fixture.status();
  MlmBatch batch;
  batch.input_ids = *fixture->find("input_ids");
  batch.token_type_ids = *fixture->find("token_type_ids");
  batch.attention_mask = *fixture->find("attention_mask");

  AwqOptions o;  // INT4 asymmetric g128, grids of 20
  bool given = false;
  absl::StatusOr<AwqResult> result = quantize_awq(
      **model,
      [&](MlmBatch* b) {
        if (given) return false;
        given = true;
        *b = batch;
        return true;
      },
      o);
  ASSERT_TRUE(result.ok()) << result.status();
  const auto sqnr = [&](const QuantizedStateDict& state) {
    absl::StatusOr<QuantizedBert> q = build_quantized_bert(state, *config, ActivationQuantSpec{});
    BF_CHECK(q.ok(), q.status().ToString());
    autograd::NoGradGuard no_grad;
    const Tensor want = (*model)->encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
    const Tensor got = q->model->encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
    return hidden_sqnr_db(want, got, batch.attention_mask);
  };
  const double awq_db = sqnr(result->state);
  const double rtn_db = sqnr(quantize_rtn(**model, o.weights));
  double rtn_mse = 0, awq_mse = 0;
  for (const AwqLinearReport& r : result->linears) {
    rtn_mse += r.rtn_mse;
    awq_mse += r.awq_mse;
  }
  std::printf("MiniLM W4 g128 (%lld calibration tokens): last hidden state SQNR RTN %.2f dB, AWQ %.2f dB; "
              "summed Linear output MSE RTN %.4g, AWQ %.4g\n",
              static_cast<long long>(result->calibration_tokens), rtn_db, awq_db, rtn_mse, awq_mse);
  EXPECT_GT(awq_db, rtn_db);
}

}  // namespace
}  // namespace bertforge::quant
