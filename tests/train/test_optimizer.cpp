// The BERT optimizer: LR schedule, weight-decay groups, gradient clipping,
// and save/load that continues the exact trajectory.
#include "train/optimizer.h"

#include <gtest/gtest.h>

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

TEST(ClipGradNorm, ScalesToTheMaxNorm) {
  auto params = two_params();
  params[0].second.set_grad(Tensor::from_vector<float>({3, 0}, {2}));
  params[1].second.set_grad(Tensor::from_vector<float>({4}, {1}));
  EXPECT_FLOAT_EQ(clip_grad_norm(params, 10.0f), 5.0f);  // below the max: untouched
  EXPECT_EQ(params[0].second.grad().to_float_vector(), (std::vector<float>{3, 0}));
  EXPECT_FLOAT_EQ(clip_grad_norm(params, 1.0f), 5.0f);
  EXPECT_FLOAT_EQ(params[0].second.grad().at({0}), 0.6f);
  EXPECT_FLOAT_EQ(params[1].second.grad().at({0}), 0.8f);
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
