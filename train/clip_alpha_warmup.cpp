// The clipped softmax alpha warm-up (see clip_alpha_warmup.h).
#include "train/clip_alpha_warmup.h"

#include "core/check.h"

namespace bertforge {

float ClipAlphaWarmup::alpha_at(int64_t completed_steps) const {
  BF_CHECK(steps >= 1 && completed_steps >= 0, "ClipAlphaWarmup: steps ", steps, ", completed steps ",
           completed_steps);
  if (completed_steps >= steps) return target;  // exactly the model's alpha from step N + 1 on
  const double progress = static_cast<double>(completed_steps) / static_cast<double>(steps);
  return static_cast<float>(start + (static_cast<double>(target) - start) * progress);
}

float uniform_threshold_clip_alpha(float zeta, int64_t seq_len) {
  BF_CHECK(seq_len >= 2, "uniform_threshold_clip_alpha: seq_len must be at least 2, got ", seq_len);
  return zeta * static_cast<float>(seq_len) / static_cast<float>(seq_len - 1);
}

}  // namespace bertforge
