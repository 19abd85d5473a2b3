// The BERT optimizer: LR schedule, weight-decay groups, gradient clipping,
// and save/load that continues the exact trajectory.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

TEST(LrSchedule, WarmupThenLinearDecay) {
  const LrSchedule schedule{/*peak_lr=*/1e-3f, /*warmup_steps=*/10, /*total_steps=*/110};
  EXPECT_FLOAT_EQ(schedule.lr_at(1), 1e-4f);
  EXPECT_FLOAT_EQ(schedule.lr_at(5), 5e-4f);
  EXPECT_FLOAT_EQ(schedule.lr_at(10), 1e-3f);
  EXPECT_FLOAT_EQ(schedule.lr_at(60), 5e-4f);  // halfway through the decay
  EXPECT_FLOAT_EQ(schedule.lr_at(110), 0.0f);
  EXPECT_FLOAT_EQ(schedule.lr_at(500), 0.0f);
  EXPECT_FLOAT_EQ((LrSchedule{2e-4f, 0, 4}.lr_at(1)), 1.5e-4f);  // no warm-up
  EXPECT_THROW(schedule.lr_at(0), Error);
}

TEST(WeightDecay, BertGroups) {
  EXPECT_TRUE(uses_weight_decay("bert.encoder.layer.0.attention.self.query.weight"));
  EXPECT_TRUE(uses_weight_decay("bert.embeddings.word_embeddings.weight"));
  EXPECT_FALSE(uses_weight_decay("bert.encoder.layer.0.attention.self.query.bias"));
  EXPECT_FALSE(uses_weight_decay("bert.encoder.layer.3.output.LayerNorm.weight"));
  EXPECT_FALSE(uses_weight_decay("cls.predictions.bias"));
}

std::vector<std::pair<std::string, Tensor>> two_params() {
  Tensor w = Tensor::from_vector<float>({3, 4}, {2});
  Tensor b = Tensor::from_vector<float>({1}, {1});
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  return {{"layer.weight", w}, {"layer.bias", b}};
}

TEST(GlobalGradNorm, IsTheNormOfAllGradientsTogether) {
  auto params = two_params();
  EXPECT_EQ(global_grad_norm(params), 0.0f);  // no gradients yet
  params[0].second.set_grad(Tensor::from_vector<float>({3, 0}, {2}));
  EXPECT_FLOAT_EQ(global_grad_norm(params), 3.0f);  // b has none: skipped
  params[1].second.set_grad(Tensor::from_vector<float>({4}, {1}));
  EXPECT_FLOAT_EQ(global_grad_norm(params), 5.0f);
}

// Clipping: one step with gradients (3, 0), (4) and max norm 1 moves the parameters exactly as AdamW on the
// gradients scaled to norm 1, (0.6, 0), (0.8), and returns the norm before clipping; below the max norm the
// gradients are used as they are.
TEST(AdamWOptimizer, ClipsTheGlobalNormBeforeTheUpdate) {
  // The parameters after one step with these gradients, and the norm step() returned.
  const auto one_step = [](float max_norm, std::vector<float> w_grad, float b_grad, float* norm) {
    auto params = two_params();
    OptimizerConfig config;
    config.max_grad_norm = max_norm;
    // A first step moves by about lr * g / (|g| + eps): a large eps makes it depend on the gradient's size.
    config.adamw.eps = 1.0f;
    AdamWOptimizer optimizer(params, config);
    params[0].second.set_grad(Tensor::from_vector<float>(w_grad, {2}));
    params[1].second.set_grad(Tensor::from_vector<float>({b_grad}, {1}));
    *norm = optimizer.step(0.1f);
    return std::vector<std::vector<float>>{params[0].second.to_float_vector(), params[1].second.to_float_vector()};
  };
  float norm = 0;
  const auto clipped = one_step(1.0f, {3, 0}, 4, &norm);
  EXPECT_FLOAT_EQ(norm, 5.0f);
  EXPECT_EQ(clipped, one_step(0.0f, {3.0f * 0.2f, 0}, 4.0f * 0.2f, &norm));
  EXPECT_FLOAT_EQ(norm, 1.0f);
  EXPECT_EQ(one_step(10.0f, {3, 0}, 4, &norm), one_step(0.0f, {3, 0}, 4, &norm));
  EXPECT_NE(clipped, one_step(0.0f, {3, 0}, 4, &norm));  // the clip changed something
}

// Gradients S times too large with grad_multiplier 1/S (S a power of two, as a loss scale) give the very same step
// as the plain gradients; an infinite gradient makes the step a no-op that clears the gradients and is not counted.
TEST(AdamWOptimizer, GradientMultiplierAndNonFiniteGradients) {
  auto scaled = two_params(), plain = two_params();
  OptimizerConfig config;
  config.max_grad_norm = 1.0f;  // and clipping, which sees the multiplied norm
  AdamWOptimizer scaled_optimizer(scaled, config), plain_optimizer(plain, config);
  scaled[0].second.set_grad(Tensor::from_vector<float>({3.0f * 1024, -0.5f * 1024}, {2}));
  scaled[1].second.set_grad(Tensor::from_vector<float>({4.0f * 1024}, {1}));
  plain[0].second.set_grad(Tensor::from_vector<float>({3.0f, -0.5f}, {2}));
  plain[1].second.set_grad(Tensor::from_vector<float>({4.0f}, {1}));
  EXPECT_EQ(scaled_optimizer.step(0.1f, 1.0f / 1024), plain_optimizer.step(0.1f));
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(scaled[i].second.to_float_vector(), plain[i].second.to_float_vector());

  const std::vector<float> before = scaled[0].second.to_float_vector();
  scaled[0].second.set_grad(Tensor::from_vector<float>({INFINITY, 1.0f}, {2}));
  scaled[1].second.set_grad(Tensor::from_vector<float>({1.0f}, {1}));
  EXPECT_FALSE(std::isfinite(scaled_optimizer.step(0.1f, 1.0f / 1024)));
  EXPECT_EQ(scaled[0].second.to_float_vector(), before);
  EXPECT_FALSE(scaled[0].second.grad().defined());
  EXPECT_EQ(scaled_optimizer.steps_taken(), 1);
  EXPECT_THROW(scaled_optimizer.step(0.1f, 0.0f), Error);
}

// L = sum(w * w) + sum(b * x): one training step's gradients.
void make_gradients(std::vector<std::pair<std::string, Tensor>>& params, float x) {
  const Tensor& w = params[0].second;
  const Tensor& b = params[1].second;
  autograd::backward(add(sum(mul(w, w)), sum(scale(b, x))));
}

TEST(AdamWOptimizer, DecaysWeightsButNotBiases) {
  auto params = two_params();
  OptimizerConfig config;
  config.adamw.weight_decay = 0.5f;
  config.max_grad_norm = 0.0f;
  AdamWOptimizer optimizer(params, config);
  params[0].second.set_grad(Tensor::zeros({2}));
  params[1].second.set_grad(Tensor::zeros({1}));
  optimizer.step(0.1f);  // zero gradients: only the decay moves anything
  EXPECT_FLOAT_EQ(params[0].second.at({0}), 3.0f * (1.0f - 0.1f * 0.5f));
  EXPECT_FLOAT_EQ(params[1].second.at({0}), 1.0f);
  EXPECT_FALSE(params[0].second.grad().defined());  // step() clears the gradients
}

class OptimizerState : public test_support::TempDirTest {
 protected:
  OptimizerState() : TempDirTest("optimizer") {}
};

TEST_F(OptimizerState, SaveAndLoadContinueTheSameTrajectory) {
  const std::string state_path = path("optimizer.safetensors");
  OptimizerConfig config;
  auto run = [&](int steps, AdamWOptimizer& optimizer, std::vector<std::pair<std::string, Tensor>>& params,
                 int first_step) {
    for (int s = first_step; s < first_step + steps; ++s) {
      make_gradients(params, 0.3f * s);
      optimizer.step(0.01f);
    }
  };
  auto straight = two_params();
  AdamWOptimizer straight_optimizer(straight, config);
  run(6, straight_optimizer, straight, 0);

  auto first = two_params();
  AdamWOptimizer first_optimizer(first, config);
  run(3, first_optimizer, first, 0);
  ASSERT_TRUE(first_optimizer.save(state_path).ok());
  auto resumed = two_params();
  for (size_t i = 0; i < resumed.size(); ++i) resumed[i].second.copy_(first[i].second);
  AdamWOptimizer resumed_optimizer(resumed, config);
  ASSERT_TRUE(resumed_optimizer.load(state_path).ok());
  EXPECT_EQ(resumed_optimizer.steps_taken(), 3);
  run(3, resumed_optimizer, resumed, 3);
  for (size_t i = 0; i < resumed.size(); ++i) {
    EXPECT_EQ(resumed[i].second.to_float_vector(), straight[i].second.to_float_vector()) << resumed[i].first;
  }

  // A state saved for other parameters is rejected and leaves the optimizer unchanged.
  Tensor other = Tensor::zeros({3});
  other.set_requires_grad(true);
  AdamWOptimizer mismatched({{"layer.weight", other}, {"layer.bias", resumed[1].second}}, config);
  absl::Status status = mismatched.load(state_path);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("layer.weight"), absl::string_view::npos) << status;
  EXPECT_EQ(mismatched.steps_taken(), 0);
}

}  // namespace
}  // namespace bertforge
