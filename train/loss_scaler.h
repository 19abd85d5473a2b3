// Loss scaling for gradients computed in low precision (Micikevicius et al. 2018, "Mixed Precision Training").
//
// Backward starts from the loss multiplied by a scale S, so every gradient is S times larger and small ones do
// not underflow in FP16 arithmetic (--mixed_precision fp16 rounds activations and their gradients to FP16 for
// the GEMMs; --gemm_precision fp16 has cuBLAS multiply in FP16). The optimizer divides S back out before clipping
// and the update. S is a power of two, so both multiplications, and rounding to FP16, commute: with gradients
// that neither overflow nor underflow, training with and without scaling is bit for bit the same.
//
//   kNone     S = 1
//   kStatic   S fixed
//   kDynamic  S starts at initial_scale; a step whose gradients are not finite (inf or NaN: S was too large) is
//             skipped and halves S; growth_interval finite steps in a row double it. S stays in [1, 2^24].
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/json.h"

namespace bertforge {

struct LossScaleConfig {
  enum class Mode { kNone, kStatic, kDynamic };
  Mode mode = Mode::kNone;
  float initial_scale = 65536.0f;  // kStatic: the scale; kDynamic: where it starts (a power of two in [1, 2^24])
  int64_t growth_interval = 2000;  // kDynamic: finite steps in a row before the scale doubles

  absl::Status validate() const;
};

// "none", "dynamic", or a power of two such as "1024" (static): the --loss_scale flag. "auto" is dynamic when
// the run multiplies in FP16 (fp16_arithmetic) and none otherwise.
absl::StatusOr<LossScaleConfig> parse_loss_scale(absl::string_view text, bool fp16_arithmetic = false);

class LossScaler {
 public:
  explicit LossScaler(const LossScaleConfig& config);

  float scale() const { return scale_; }
  bool enabled() const { return config_.mode != LossScaleConfig::Mode::kNone; }

  // Called once per step with whether the step's (scaled) gradients were all finite. Returns whether the
  // optimizer should apply the step: only with finite gradients, in every mode. kDynamic then adjusts the scale.
  bool update(bool gradients_finite);

  // The scale and the count of finite steps since it last changed, for checkpoints; restore() checks them.
  Json state() const;
  absl::Status restore(const Json& state);

 private:
  LossScaleConfig config_;
  float scale_;
  int64_t finite_steps_ = 0;  // finite steps in a row since the scale last changed
};

}  // namespace bertforge
