// The clipped softmax alpha warm-up of pretraining (TrainerConfig::clip_alpha_warmup_steps): alpha rises
// linearly from a start value to the model's clip_alpha (the target, which config.json keeps) over the first N
// optimizer steps; the forward passes get it through ForwardContext::clip_alpha (models/forward_context.h).
//
// Step convention: s is the number of optimizer steps completed before the one being computed, so s = 0 for the
// first step (the trainer's step 1) and s = N for step N + 1, the first that trains with the target:
//   alpha(s) = start + (target - start) * min(1, s / N)
// An evaluation after step k, and step k's metrics record, use alpha(k - 1): the alpha step k trained with.
//
// The default start. With gamma = -alpha / T, an attention probability p is clipped to 0 where
// (zeta - gamma) p + gamma <= 0, i.e. p <= alpha / (zeta T + alpha). Setting that threshold to 1/T, uniform
// attention, gives alpha = zeta T / (T - 1): at the start a uniform row lies exactly on the threshold, and any
// other row keeps its entries above 1/T.
#pragma once

#include <cstdint>

namespace bertforge {

struct ClipAlphaWarmup {
  float start = 0.0f;
  float target = 0.0f;
  int64_t steps = 1;  // N >= 1

  // alpha(completed_steps) as above; completed_steps >= 0.
  float alpha_at(int64_t completed_steps) const;
};

// zeta T / (T - 1): the alpha whose clip threshold alpha / (zeta T + alpha) is 1/T, for seq_len T >= 2.
float uniform_threshold_clip_alpha(float zeta, int64_t seq_len);

}  // namespace bertforge
