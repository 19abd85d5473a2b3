// Folding per-input-channel scales into post-LN BERT (quant/channel_fold.h) and migration (quant/migration.h), on
// random 2-layer BERTs of every attention variant (hidden 32, FFN 64, init std 0.2) and the synthetic corpus:
//   - each group alone and all four at once, with random scales of both signs over two decades, leave the hidden
//     states and logits unchanged (1e-5 relative to the largest value), and the fold really moved the weights
//   - the folded multiplies survive the checkpoint (folded_scale_tensors -> take_folded_scales), and AWQ's earlier
//     awq_input_scale form reads as gelu_output = 1/s
//   - folds compose: s then t equals s * t
//   - bad scales (zero, NaN, wrong shape) and bad checkpoint names are refused, naming them
//   - smooth and gamma migration keep the FP function, and smooth's searched alpha never raises the output error
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "quant/channel_fold.h"
#include "quant/group_statistics.h"
#include "quant/migration.h"
#include "quant/quantized_model.h"
#include "tests/support/synthetic_bert.h"

namespace bertforge::quant {
namespace {

// max |a - b| / max |a| over two tensors of one shape (max |a - b| when a is all zero).
double relative_difference(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_float_vector(), y = b.to_float_vector();
  EXPECT_EQ(x.size(), y.size());
  double top = 0, diff = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    top = std::max(top, std::fabs(double{x[i]}));
    diff = std::max(diff, std::fabs(double{x[i]} - y[i]));
  }
  return top > 0 ? diff / top : diff;
}

class ChannelFold : public test_support::SyntheticBertTest, public ::testing::WithParamInterface<AttentionVariant> {
 protected:
  ChannelFold() : SyntheticBertTest("channel_fold") {}

  void SetUp() override {
    SyntheticBertTest::SetUp();
    BertConfig c = config();
    c.attention = GetParam();
    if (c.attention == AttentionVariant::kClippedSoftmax) c.clip_gamma = -0.03f;
    model_ = std::make_unique<BertForMaskedLM>(c, /*init_seed=*/5);
    model_->eval();
    DataLoader validation = loader("validation.zst", false);
    batch_ = validation.next();
  }

  // Scales exp(U(-2.3, 2.3)) (0.1 to 10), negative with probability 1/4.
  Tensor random_scale(int64_t n) {
    std::uniform_real_distribution<float> u(-2.3f, 2.3f);
    std::vector<float> s(static_cast<size_t>(n));
    for (float& x : s) x = std::exp(u(rng_)) * (rng_() % 4 == 0 ? -1.0f : 1.0f);
    return Tensor::from_vector(s, {n});
  }

  std::vector<LayerInputScales> random_scales(const std::vector<FoldGroup>& groups) {
    const BertConfig& c = model_->config();
    std::vector<LayerInputScales> scales(static_cast<size_t>(c.num_hidden_layers));
    for (LayerInputScales& layer : scales) {
      for (FoldGroup g : groups) {
        layer.at(g) = random_scale(g == FoldGroup::kGeluOutput ? c.intermediate_size : c.hidden_size);
      }
    }
    return scales;
  }

  struct Outputs {
    Tensor hidden, logits;
  };
  Outputs run(const BertForMaskedLM& model) {
    autograd::NoGradGuard no_grad;
    const Tensor hidden = model.encode(batch_.input_ids, batch_.token_type_ids, batch_.attention_mask);
    return {hidden, model.forward(batch_.input_ids, batch_.token_type_ids, batch_.attention_mask).logits};
  }

  // The folded model computes the original's function; returns the largest relative difference.
  double expect_same_function(const BertForMaskedLM& folded, const std::string& what) {
    const Outputs want = run(*model_), got = run(folded);
    const double hidden = relative_difference(want.hidden, got.hidden);
    const double logits = relative_difference(want.logits, got.logits);
    std::printf("%-30s %-16s hidden %.2e logits %.2e\n", what.c_str(), attention_variant_name(GetParam()), hidden,
                logits);
    EXPECT_LE(hidden, 1e-5) << what;
    EXPECT_LE(logits, 1e-5) << what;
    return std::max(hidden, logits);
  }

  std::mt19937 rng_{11};
  MlmBatch batch_;
};

TEST_P(ChannelFold, EachGroupAndAllAtOnceKeepTheFunction) {
  for (FoldGroup group : kFoldGroups) {
    const std::unique_ptr<BertForMaskedLM> folded = clone_bert(*model_);
    ASSERT_TRUE(fold_input_scales(*folded, random_scales({group})).ok());
    expect_same_function(*folded, fold_group_name(group));
    // The fold moved the group's weights (it is not a no-op).
    const Tensor before = group_weight(*model_, 1, group), after = group_weight(*folded, 1, group);
    EXPECT_GT(relative_difference(before, after), 0.1) << fold_group_name(group);
  }
  const std::unique_ptr<BertForMaskedLM> folded = clone_bert(*model_);
  const std::vector<FoldGroup> all(std::begin(kFoldGroups), std::end(kFoldGroups));
  ASSERT_TRUE(fold_input_scales(*folded, random_scales(all)).ok());
  expect_same_function(*folded, "all groups");
  EXPECT_EQ(folded_layer_count(*folded), 2);

  // Without the multiplies the fold leaves, the function changes: they are needed.
  const std::unique_ptr<BertForMaskedLM> bare = clone_bert(*folded);
  install_folded_scales(*bare, std::vector<BertLayer::FoldedScales>(2));
  EXPECT_GT(relative_difference(run(*model_).hidden, run(*bare).hidden), 1e-2);
}

TEST_P(ChannelFold, FoldedMultipliesSurviveTheCheckpoint) {
  const std::unique_ptr<BertForMaskedLM> folded = clone_bert(*model_);
  const std::vector<FoldGroup> all(std::begin(kFoldGroups), std::end(kFoldGroups));
  ASSERT_TRUE(fold_input_scales(*folded, random_scales(all)).ok());
  QuantizedStateDict state;
  state.fp = folded->state_dict();
  const StateDict multiplies = folded_scale_tensors(*folded);
  EXPECT_EQ(multiplies.size(), 6u);  // 3 per layer
  for (const auto& named : multiplies) state.fp.push_back(named);
  const std::string file = path("folded.safetensors");
  ASSERT_TRUE(save_quantized_bert(file, state, ActivationQuantSpec{}).ok());
  absl::StatusOr<LoadedQuantizedBert> loaded = load_quantized_bert(file, model_->config());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->bert.folded_layers, 2);
  expect_same_function(*loaded->bert.model, "through the checkpoint");
}

TEST_P(ChannelFold, FoldsCompose) {
  const std::vector<FoldGroup> all(std::begin(kFoldGroups), std::end(kFoldGroups));
  const std::vector<LayerInputScales> s = random_scales(all), t = random_scales(all);
  std::vector<LayerInputScales> st = s;
  for (size_t l = 0; l < st.size(); ++l) {
    for (FoldGroup g : kFoldGroups) {
      std::vector<float> a = s[l].at(g).to_float_vector();
      const std::vector<float> b = t[l].at(g).to_float_vector();
      for (size_t j = 0; j < a.size(); ++j) a[j] *= b[j];
      st[l].at(g) = Tensor::from_vector(a, s[l].at(g).shape());
    }
  }
  const std::unique_ptr<BertForMaskedLM> twice = clone_bert(*model_), once = clone_bert(*model_);
  ASSERT_TRUE(fold_input_scales(*twice, s).ok());
  ASSERT_TRUE(fold_input_scales(*twice, t).ok());
  ASSERT_TRUE(fold_input_scales(*once, st).ok());
  for (const auto& [name, tensor] : once->state_dict()) {
    for (const auto& [other, value] : twice->state_dict()) {
      if (other == name) {
        EXPECT_LE(relative_difference(tensor, value), 1e-6) << name;
      }
    }
  }
  expect_same_function(*twice, "s then t");
}

INSTANTIATE_TEST_SUITE_P(Variants, ChannelFold,
                         ::testing::Values(AttentionVariant::kSoftmax, AttentionVariant::kClippedSoftmax,
                                           AttentionVariant::kGated),
                         [](const ::testing::TestParamInfo<AttentionVariant>& info) {
                           return std::string(attention_variant_name(info.param));
                         });

class ChannelFoldErrors : public test_support::SyntheticBertTest {
 protected:
  ChannelFoldErrors() : SyntheticBertTest("channel_fold_errors") {}
};

TEST_F(ChannelFoldErrors, BadScalesAreRefusedAndNothingChanges) {
  const StateDict before = clone_bert(*model_)->state_dict();
  // `scale` for `group` of layer 1, nothing else.
  const auto refused = [&](FoldGroup group, const Tensor& scale, const std::string& needle) {
    std::vector<LayerInputScales> scales(2);
    scales[1].at(group) = scale;
    const absl::Status s = fold_input_scales(*model_, scales);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(needle), std::string::npos) << s;
  };
  std::vector<float> ones(32, 1.0f);
  std::vector<float> zero = ones;
  zero[3] = 0.0f;
  refused(FoldGroup::kQkv, Tensor::from_vector(zero, {32}), "layer 1 group qkv");
  std::vector<float> nan = ones;
  nan[7] = std::numeric_limits<float>::quiet_NaN();
  refused(FoldGroup::kContext, Tensor::from_vector(nan, {32}), "context");
  refused(FoldGroup::kGeluOutput, Tensor::from_vector(ones, {32}), "expected an f32 scale of shape [64]");
  const StateDict after = model_->state_dict();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(relative_difference(before[i].second, after[i].second), 0.0);
  EXPECT_FALSE(fold_input_scales(*model_, std::vector<LayerInputScales>(3)).ok());  // 3 layers for 2
}

TEST_F(ChannelFoldErrors, CheckpointNamesAreChecked) {
  const BertConfig c = config();
  const auto take = [&](const std::string& name, const Tensor& t) {
    StateDict tensors{{"bert.embeddings.LayerNorm.weight", Tensor::ones({32})}, {name, t}};
    absl::StatusOr<std::vector<BertLayer::FoldedScales>> taken = take_folded_scales(tensors, c);
    if (taken.ok()) {
      EXPECT_EQ(tensors.size(), 1u);  // the scale was taken out, the rest kept
    }
    return taken;
  };
  EXPECT_TRUE(take("bert.encoder.layer.1.folded.ffn_residual", Tensor::ones({32})).ok());
  EXPECT_FALSE(take("bert.encoder.layer.2.folded.ffn_residual", Tensor::ones({32})).ok());  // no layer 2
  EXPECT_FALSE(take("bert.encoder.layer.0.folded.residual", Tensor::ones({32})).ok());
  EXPECT_FALSE(take("bert.encoder.layer.0.folded.gelu_output", Tensor::ones({32})).ok());  // (64) expected
  EXPECT_FALSE(take("bert.encoder.layer.0.folded.ffn_residual", Tensor::zeros({32})).ok());
  // AWQ's earlier form: s, which the layer divides by.
  std::vector<float> s(64, 4.0f);
  absl::StatusOr<std::vector<BertLayer::FoldedScales>> legacy =
      take("bert.encoder.layer.1.output.dense.awq_input_scale", Tensor::from_vector(s, {64}));
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_EQ((*legacy)[1].gelu_output.to_float_vector()[0], 0.25f);
  EXPECT_FALSE((*legacy)[0].gelu_output.defined());
}

// ---- Migration --------------------------------------------------------------------------------------------

class Migration : public test_support::SyntheticBertTest {
 protected:
  Migration() : SyntheticBertTest("migration") {}

  MigrationResult migrate(BertForMaskedLM& model, const MigrationOptions& options) {
    DataLoader calibration = loader("train.zst", /*shuffle=*/true);
    absl::StatusOr<MigrationResult> result = migrate_outliers(model, loader_batches(calibration, 4), options);
    BF_CHECK(result.ok(), result.status().ToString());
    return std::move(*result);
  }
};

TEST_F(Migration, SmoothAndGammaKeepTheFunction) {
  DataLoader validation = loader("validation.zst", false);
  const MlmBatch batch = validation.next();
  autograd::NoGradGuard no_grad;
  const Tensor want = model_->encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
  for (MigrationMethod method : {MigrationMethod::kSmooth, MigrationMethod::kGamma}) {
    const std::unique_ptr<BertForMaskedLM> model = clone_bert(*model_);
    MigrationOptions options;
    options.method = method;
    const MigrationResult result = migrate(*model, options);
    ASSERT_EQ(result.groups.size(), 8u);
    int migrated = 0;
    for (const MigrationGroupReport& r : result.groups) {
      migrated += r.migrated ? 1 : 0;
      // Gamma migrates the LayerNorm-fed groups only.
      if (method == MigrationMethod::kGamma) {
        EXPECT_EQ(r.migrated, r.group == FoldGroup::kQkv || r.group == FoldGroup::kFfnInput);
      }
    }
    EXPECT_EQ(migrated, method == MigrationMethod::kSmooth ? 8 : 4);
    const Tensor got = model->encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
    EXPECT_LE(relative_difference(want, got), 1e-5) << migration_method_name(method);
  }
}

TEST_F(Migration, SearchedAlphaNeverRaisesTheOutputError) {
  // An outlier channel in every LayerNorm's output: gamma 20x on channel 3.
  {
    autograd::NoGradGuard no_grad;
    const auto boost = [](Tensor& gamma) { gamma.data<float>()[3] *= 20.0f; };
    boost(model_->embeddings.layer_norm.weight);
    for (const auto& layer : model_->layers) {
      boost(layer->attention_output_layer_norm.weight);
      boost(layer->output_layer_norm.weight);
    }
  }
  MigrationOptions options;
  options.method = MigrationMethod::kSmooth;
  options.search_alpha = true;
  options.activation_bits = 6;
  const MigrationResult result = migrate(*clone_bert(*model_), options);
  int better = 0;
  for (const MigrationGroupReport& r : result.groups) {
    EXPECT_LE(r.error_after, r.error_before) << r.layer << " " << fold_group_name(r.group);
    better += r.error_after < 0.9 * r.error_before ? 1 : 0;
    std::printf("layer %lld %-11s migrated %d alpha %.2f max|x| %.2f -> %.2f ratio %.1f -> %.1f error %.3e -> %.3e\n",
                static_cast<long long>(r.layer), fold_group_name(r.group), r.migrated, r.alpha, r.input_max_before,
                r.input_max_after, r.outlier_ratio_before, r.outlier_ratio_after, r.error_before, r.error_after);
    if (r.group == FoldGroup::kQkv || r.group == FoldGroup::kFfnInput) {
      EXPECT_GT(r.outlier_ratio_before, 5.0f);  // the planted outlier is seen
    }
  }
  EXPECT_GE(better, 4);  // at least the LayerNorm-fed groups with the outlier channel improve clearly
}

TEST_F(Migration, OptionsAreValidated) {
  MigrationOptions o;
  o.alpha = 1.5;
  EXPECT_FALSE(o.validate().ok());
  o = MigrationOptions{};
  o.alpha_grid = 0;
  EXPECT_FALSE(o.validate().ok());
  o = MigrationOptions{};
  o.activation_bits = 9;
  EXPECT_FALSE(o.validate().ok());
  EXPECT_FALSE(parse_migration_method("smoothquant").ok());
  EXPECT_EQ(*parse_migration_method("gamma"), MigrationMethod::kGamma);
}

}  // namespace
}  // namespace bertforge::quant
