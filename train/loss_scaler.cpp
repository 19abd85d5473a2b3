// Static and dynamic loss scaling (loss_scaler.h).
#include "train/loss_scaler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace bertforge {
namespace {

constexpr float kMaxScale = 16777216.0f;  // 2^24

bool is_power_of_two_scale(float scale) {
  if (!(scale >= 1.0f && scale <= kMaxScale)) return false;
  int exponent = 0;
  return std::frexp(scale, &exponent) == 0.5f;  // scale = 0.5 * 2^exponent exactly
}

}  // namespace

absl::Status LossScaleConfig::validate() const {
  if (mode != Mode::kNone && !is_power_of_two_scale(initial_scale)) {
    return absl::InvalidArgumentError(absl::StrCat("loss scale ", initial_scale, " must be a power of two in [1, ",
                                                   kMaxScale, "] (so that scaling is exact)"));
  }
  if (mode == Mode::kDynamic && growth_interval < 1) {
    return absl::InvalidArgumentError(absl::StrCat("loss scale growth interval must be at least 1, got ",
                                                   growth_interval));
  }
  return absl::OkStatus();
}

absl::StatusOr<LossScaleConfig> parse_loss_scale(absl::string_view text, bool fp16_arithmetic) {
  LossScaleConfig config;
  if (text == "auto") text = fp16_arithmetic ? "dynamic" : "none";
  if (text == "none") return config;
  if (text == "dynamic") {
    config.mode = LossScaleConfig::Mode::kDynamic;
    return config;
  }
  float scale = 0.0f;
  if (!absl::SimpleAtof(text, &scale)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--loss_scale '", text, "': auto, none, dynamic, or a power of two such as 1024"));
  }
  config.mode = LossScaleConfig::Mode::kStatic;
  config.initial_scale = scale;
  if (absl::Status valid = config.validate(); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--loss_scale '", text, "': ", valid.message()));
  }
  return config;
}

LossScaler::LossScaler(const LossScaleConfig& config)
    : config_(config), scale_(config.mode == LossScaleConfig::Mode::kNone ? 1.0f : config.initial_scale) {
  const absl::Status valid = config.validate();
  BF_CHECK(valid.ok(), valid.message());
}

bool LossScaler::update(bool gradients_finite) {
  if (config_.mode != LossScaleConfig::Mode::kDynamic) return gradients_finite;
  if (!gradients_finite) {
    scale_ = std::max(1.0f, scale_ / 2.0f);
    finite_steps_ = 0;
    return false;
  }
  if (++finite_steps_ >= config_.growth_interval) {
    scale_ = std::min(kMaxScale, scale_ * 2.0f);
    finite_steps_ = 0;
  }
  return true;
}

Json LossScaler::state() const {
  Json state = Json::object();
  state.set("scale", static_cast<double>(scale_));
  state.set("finite_steps", finite_steps_);
  return state;
}

absl::Status LossScaler::restore(const Json& state) {
  const Json* scale = state.get("scale");
  const Json* finite_steps = state.get("finite_steps");
  if (scale == nullptr || !scale->is_number() || !is_power_of_two_scale(static_cast<float>(scale->as_number())) ||
      finite_steps == nullptr || !finite_steps->is_int64() || finite_steps->as_int64() < 0) {
    return absl::DataLossError(absl::StrCat("loss scaler state ", state.dump(),
                                            " is not {\"scale\": a power of two, \"finite_steps\": n >= 0}"));
  }
  scale_ = static_cast<float>(scale->as_number());
  finite_steps_ = finite_steps->as_int64();
  return absl::OkStatus();
}

}  // namespace bertforge
