// The loss scaler (train/loss_scaler.h): the --loss_scale flag's forms, the dynamic scale's growth and backoff
// against a hand-counted sequence of steps, its bounds, and its checkpoint state.
#include "train/loss_scaler.h"

#include <gtest/gtest.h>

#include "core/check.h"

namespace bertforge {
namespace {

TEST(LossScaler, ParsesTheFlag) {
  EXPECT_EQ(parse_loss_scale("none")->mode, LossScaleConfig::Mode::kNone);
  EXPECT_EQ(parse_loss_scale("dynamic")->mode, LossScaleConfig::Mode::kDynamic);
  // auto: dynamic where the run does FP16 arithmetic, none otherwise.
  EXPECT_EQ(parse_loss_scale("auto", /*fp16_arithmetic=*/true)->mode, LossScaleConfig::Mode::kDynamic);
  EXPECT_EQ(parse_loss_scale("auto", /*fp16_arithmetic=*/false)->mode, LossScaleConfig::Mode::kNone);
  const absl::StatusOr<LossScaleConfig> fixed = parse_loss_scale("1024");
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(fixed->mode, LossScaleConfig::Mode::kStatic);
  EXPECT_EQ(fixed->initial_scale, 1024.0f);
  for (const char* bad : {"1000", "0.5", "0", "-4", "33554432", "nan", "inf", "lots", ""}) {
    const absl::StatusOr<LossScaleConfig> parsed = parse_loss_scale(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("--loss_scale"), absl::string_view::npos) << parsed.status();
    }
  }
}

TEST(LossScaler, NoneAndStaticKeepTheirScaleAndSkipOnlyNonFiniteSteps) {
  LossScaler none(LossScaleConfig{});
  EXPECT_FALSE(none.enabled());
  EXPECT_EQ(none.scale(), 1.0f);
  EXPECT_TRUE(none.update(true));
  EXPECT_FALSE(none.update(false));
  EXPECT_EQ(none.scale(), 1.0f);
  LossScaler fixed(*parse_loss_scale("256"));
  EXPECT_TRUE(fixed.enabled());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(fixed.update(true));
  EXPECT_FALSE(fixed.update(false));
  EXPECT_EQ(fixed.scale(), 256.0f);
}

TEST(LossScaler, DynamicGrowsAfterTheIntervalAndBacksOffOnOverflow) {
  LossScaleConfig config;
  config.mode = LossScaleConfig::Mode::kDynamic;
  config.initial_scale = 8.0f;
  config.growth_interval = 3;
  LossScaler scaler(config);
  EXPECT_TRUE(scaler.update(true));
  EXPECT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 8.0f);
  EXPECT_TRUE(scaler.update(true));  // the third finite step in a row
  EXPECT_EQ(scaler.scale(), 16.0f);
  EXPECT_TRUE(scaler.update(true));
  EXPECT_TRUE(scaler.update(true));
  EXPECT_FALSE(scaler.update(false));  // overflow: skipped, halved, the count starts again
  EXPECT_EQ(scaler.scale(), 8.0f);
  EXPECT_TRUE(scaler.update(true));
  EXPECT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 8.0f);
  EXPECT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 16.0f);
  for (int i = 0; i < 10; ++i) scaler.update(false);
  EXPECT_EQ(scaler.scale(), 1.0f);  // never below 1
  config.initial_scale = 16777216.0f;
  config.growth_interval = 1;
  LossScaler top(config);
  top.update(true);
  EXPECT_EQ(top.scale(), 16777216.0f);  // never above 2^24
}

TEST(LossScaler, StateRoundTripsAndIsChecked) {
  LossScaleConfig config;
  config.mode = LossScaleConfig::Mode::kDynamic;
  config.growth_interval = 4;
  LossScaler scaler(config);
  scaler.update(false);
  scaler.update(true);
  scaler.update(true);
  LossScaler restored(config);
  ASSERT_TRUE(restored.restore(scaler.state()).ok());
  EXPECT_EQ(restored.scale(), 32768.0f);
  restored.update(true);
  restored.update(true);  // the 4th finite step since the backoff
  EXPECT_EQ(restored.scale(), 65536.0f);
  for (const char* bad : {R"({"scale": 3, "finite_steps": 0})", R"({"scale": 1024})",
                          R"({"scale": 1024, "finite_steps": -1})", R"([1, 2])"}) {
    EXPECT_EQ(restored.restore(*Json::parse(bad)).code(), absl::StatusCode::kDataLoss) << bad;
  }
  EXPECT_EQ(restored.scale(), 65536.0f);  // a rejected state changes nothing
}

}  // namespace
}  // namespace bertforge
