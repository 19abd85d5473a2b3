// The activation hook of BertForMaskedLM (models/forward_context.h): it sees every tap point, in forward order
// and with the documented shapes; a hook that returns its input changes nothing, bit for bit; a replacement is
// what the model continues with; probes keep seeing only their four points, after the hook; and with no hook
// tap() hands its argument back without a copy.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "models/bert.h"
#include "models/forward_context.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

// 2 layers, C = 16, H = 2, I = 32, V = 50.
BertConfig small_config(AttentionVariant attention = AttentionVariant::kSoftmax) {
  return test_support::small_bert_config(50, 16, 2, 8, attention);
}

// B = 2, T = 5.
Tensor small_ids() { return Tensor::from_vector<int64_t>({5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, {2, 5}); }
Tensor small_mask() { return Tensor::from_vector<float>({1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {2, 5}); }

// The tap points of one layer, in forward order, with their shapes for B = 2, T = 5, C = 16, H = 2, I = 32.
struct Expected {
  const char* point;
  Shape shape;
};
const std::vector<Expected> kLayerPoints = {
    {"query", {2, 5, 16}},
    {"key", {2, 5, 16}},
    {"value", {2, 5, 16}},
    {"attention_scores", {2, 2, 5, 5}},
    {"attention_probs", {2, 2, 5, 5}},
    {"context", {2, 5, 16}},
    {"attention_output", {2, 5, 16}},
    {"attention_output_plus_residual", {2, 5, 16}},
    {"attention_layer_norm", {2, 5, 16}},
    {"intermediate", {2, 5, 32}},
    {"gelu", {2, 5, 32}},
    {"ffn_output", {2, 5, 16}},
    {"ffn_output_plus_residual", {2, 5, 16}},
    {"layer_output", {2, 5, 16}},
};

struct Recorded {
  std::vector<std::string> names;
  std::vector<Shape> shapes;
  std::vector<int64_t> indices;
};

ActivationHook recording_hook(Recorded& r) {
  return [&r](const TapSite& site, const Tensor& value) {
    r.names.push_back(site.name());
    r.shapes.push_back(value.shape());
    r.indices.push_back(site.index());
    return value;
  };
}

TEST(ForwardHooks, HookSeesEveryTapPointInOrder) {
  BertForMaskedLM model(small_config(), 2);
  Recorded r;
  model.set_hook(recording_hook(r));
  model.forward(small_ids(), {}, small_mask());  // the MLM head has no tap points

  std::vector<std::string> want_names = {"embeddings.sum", "embeddings.layer_norm"};
  std::vector<Shape> want_shapes = {{2, 5, 16}, {2, 5, 16}};
  for (int layer = 0; layer < 2; ++layer) {
    for (const Expected& e : kLayerPoints) {
      want_names.push_back("layer." + std::to_string(layer) + "." + e.point);
      want_shapes.push_back(e.shape);
    }
  }
  EXPECT_EQ(r.names, want_names);
  EXPECT_EQ(r.shapes, want_shapes);
  // all_tap_sites lists the same sites, and index() is the position in that list.
  std::vector<std::string> listed;
  for (const TapSite& site : all_tap_sites(2)) listed.push_back(site.name());
  EXPECT_EQ(listed, want_names);
  for (size_t i = 0; i < r.indices.size(); ++i) EXPECT_EQ(r.indices[i], static_cast<int64_t>(i));

  // encode() taps the same points; removing the hook stops it.
  r = Recorded();
  model.encode(small_ids(), {}, {});
  EXPECT_EQ(r.names, want_names);
  model.set_hook({});
  r = Recorded();
  model.encode(small_ids(), {}, {});
  EXPECT_TRUE(r.names.empty());
}

TEST(ForwardHooks, IdentityHookLeavesLogitsBitIdentical) {
  for (AttentionVariant variant :
       {AttentionVariant::kSoftmax, AttentionVariant::kClippedSoftmax, AttentionVariant::kGated}) {
    BertConfig config = small_config(variant);
    config.head_dropout_prob = 0.2f;
    BertForMaskedLM model(config, 3);
    // Training mode too: dropout masks are keyed, so both runs draw the same ones.
    const DropoutContext dropout{5, 1, 0, 0};
    const std::vector<float> plain = model.forward(small_ids(), {}, small_mask(), {}, dropout).logits.to_float_vector();
    Recorded r;
    model.set_hook(recording_hook(r));
    const std::vector<float> hooked =
        model.forward(small_ids(), {}, small_mask(), {}, dropout).logits.to_float_vector();
    EXPECT_EQ(plain, hooked) << attention_variant_name(variant);
    EXPECT_EQ(r.names.size(), 2u + 2u * kLayerPoints.size());
  }
}

TEST(ForwardHooks, ReplacementIsWhatTheModelContinuesWith) {
  BertForMaskedLM model(small_config(), 4);
  model.eval();
  autograd::NoGradGuard no_grad;
  const Tensor plain = model.encode(small_ids(), {}, {});

  // Replacing the last layer's output replaces what encode returns.
  const Tensor constant = Tensor::full({2, 5, 16}, 0.25f);
  model.set_hook([&](const TapSite& site, const Tensor& value) {
    return site.layer == 1 && site.point == TapPoint::kLayerOutput ? constant : value;
  });
  EXPECT_EQ(model.encode(small_ids(), {}, {}).to_float_vector(), constant.to_float_vector());

  // Replacing an early point changes everything downstream; the probe sees the replacement.
  std::vector<float> probed;
  model.set_probe([&](const TapSite& site, const Tensor& value) {
    if (site.name() == "layer.0.attention_probs") probed = value.to_float_vector();
  });
  const Tensor uniform = Tensor::full({2, 2, 5, 5}, 0.2f);
  model.set_hook([&](const TapSite& site, const Tensor& value) {
    return site.layer == 0 && site.point == TapPoint::kAttentionProbs ? uniform : value;
  });
  EXPECT_NE(model.encode(small_ids(), {}, {}).to_float_vector(), plain.to_float_vector());
  EXPECT_EQ(probed, uniform.to_float_vector());
  model.set_probe({});

  // A replacement of another shape is an error.
  model.set_hook([](const TapSite& site, const Tensor& value) {
    return site.point == TapPoint::kGelu ? Tensor::zeros({1}) : value;
  });
  EXPECT_THROW(model.encode(small_ids(), {}, {}), Error);
}

TEST(ForwardHooks, ProbesSeeOnlyTheirPointsAlongsideAHook) {
  BertForMaskedLM model(small_config(), 2);
  Recorded r;
  model.set_hook(recording_hook(r));
  std::vector<std::string> probed;
  model.set_probe([&](const TapSite& site, const Tensor&) { probed.push_back(site.name()); });
  model.encode(small_ids(), {}, {});
  const std::vector<std::string> want = {
      "layer.0.attention_probs", "layer.0.ffn_output", "layer.0.ffn_output_plus_residual", "layer.0.layer_output",
      "layer.1.attention_probs", "layer.1.ffn_output", "layer.1.ffn_output_plus_residual", "layer.1.layer_output"};
  EXPECT_EQ(probed, want);
  EXPECT_EQ(r.names.size(), 2u + 2u * kLayerPoints.size());
}

TEST(ForwardHooks, WithoutCallbacksTapReturnsItsArgument) {
  const Tensor x = Tensor::full({2, 3}, 1.5f);
  const ForwardContext ctx;
  const Tensor y = ctx.tap(0, TapPoint::kQuery, x);
  EXPECT_TRUE(y.shares_storage_with(x));
  const ActivationHook empty_hook;
  const ProbeFn empty_probe;
  const ForwardContext with_empty{DropoutContext(), &empty_hook, &empty_probe, std::nullopt};
  EXPECT_TRUE(with_empty.tap(0, TapPoint::kLayerOutput, x).shares_storage_with(x));
}

TEST(ForwardHooks, TapPointTableIsInEnumOrder) {
  for (int p = 0; p < kTapPointCount; ++p) EXPECT_EQ(static_cast<int>(kTapPoints[p].point), p);
  EXPECT_EQ(TapSite({kEmbeddingsLayer, TapPoint::kEmbeddingSum}).name(), "embeddings.sum");
  EXPECT_EQ(TapSite({3, TapPoint::kGelu}).name(), "layer.3.gelu");
  EXPECT_EQ(TapSite({3, TapPoint::kFfnOutput}).name(), "layer.3.ffn_output");
  EXPECT_EQ(static_cast<int64_t>(all_tap_sites(12).size()), 2 + 12 * 14);
  EXPECT_EQ(TapSite({11, TapPoint::kLayerOutput}).index(), 2 + 12 * 14 - 1);
}

}  // namespace
}  // namespace bertforge
