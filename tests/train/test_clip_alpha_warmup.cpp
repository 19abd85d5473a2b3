// The clipped softmax alpha warm-up: the schedule's closed form at the first step, half-way, the end of the
// warm-up and beyond, and the default start, at which a uniform attention row lies exactly on the clip threshold.
#include "train/clip_alpha_warmup.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/check.h"
#include "models/bert_config.h"
#include "ops/softmax.h"

namespace bertforge {
namespace {

TEST(ClipAlphaWarmup, RisesLinearlyFromStartToTarget) {
  const ClipAlphaWarmup warmup{/*start=*/1.0f, /*target=*/3.0f, /*steps=*/100};
  // s = optimizer steps completed before the step: 0 for the first one.
  EXPECT_EQ(warmup.alpha_at(0), 1.0f);
  EXPECT_FLOAT_EQ(warmup.alpha_at(25), 1.5f);
  EXPECT_FLOAT_EQ(warmup.alpha_at(50), 2.0f);
  EXPECT_FLOAT_EQ(warmup.alpha_at(99), 1.0f + 2.0f * 0.99f);
  EXPECT_EQ(warmup.alpha_at(100), 3.0f);  // exactly the target from step N + 1 on
  EXPECT_EQ(warmup.alpha_at(101), 3.0f);
  EXPECT_EQ(warmup.alpha_at(100000), 3.0f);
  // Downwards works the same way.
  const ClipAlphaWarmup down{/*start=*/4.0f, /*target=*/2.0f, /*steps=*/4};
  EXPECT_FLOAT_EQ(down.alpha_at(1), 3.5f);
  EXPECT_EQ(down.alpha_at(4), 2.0f);
  EXPECT_THROW(warmup.alpha_at(-1), Error);
}

// alpha_start = zeta T / (T - 1): the clip threshold alpha / (zeta T + alpha) is then 1/T, so clipped softmax
// maps a uniform row to (zeta - gamma) / T + gamma = 0 (up to rounding); slightly below that alpha it survives,
// slightly above it is clipped.
TEST(ClipAlphaWarmup, DefaultStartPutsUniformAttentionOnTheThreshold) {
  for (const int64_t T : {4, 32, 128}) {
    for (const float zeta : {1.0f, 1.03f}) {
      const float alpha = uniform_threshold_clip_alpha(zeta, T);
      EXPECT_FLOAT_EQ(alpha, zeta * T / (T - 1.0f));
      EXPECT_NEAR(alpha / (zeta * T + alpha), 1.0 / T, 1e-7);
      BertConfig config;
      config.clip_zeta = zeta;
      const float gamma = config.clip_gamma_for(T, alpha);
      EXPECT_NEAR((zeta - gamma) / static_cast<float>(T) + gamma, 0.0f, 1e-6f);
      const Tensor uniform_row = Tensor::zeros({1, T});  // equal scores: softmax 1/T everywhere
      const std::vector<float> below =
          clipped_softmax(uniform_row, Tensor(), config.clip_gamma_for(T, 0.99f * alpha), zeta).to_float_vector();
      const std::vector<float> above =
          clipped_softmax(uniform_row, Tensor(), config.clip_gamma_for(T, 1.01f * alpha), zeta).to_float_vector();
      for (int64_t t = 0; t < T; ++t) {
        EXPECT_GT(below[t], 0.0f) << "T " << T;
        EXPECT_EQ(above[t], 0.0f) << "T " << T;
      }
    }
  }
  EXPECT_THROW(uniform_threshold_clip_alpha(1.0f, 1), Error);
}

}  // namespace
}  // namespace bertforge
