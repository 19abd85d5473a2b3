// The BERT optimizer: AdamW with BERT's weight-decay groups, global-norm
// gradient clipping, and a linear warm-up / linear decay learning-rate schedule.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"
#include "ops/adamw.h"

namespace bertforge {

// lr(step) for step = 1, 2, ...: rises linearly from peak/warmup to peak over
// `warmup_steps`, then falls linearly to 0 at `total_steps` (and stays 0).
struct LrSchedule {
  float peak_lr = 1e-4f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  float lr_at(int64_t step) const;
};

// BERT decays every weight matrix and embedding table, but not biases or
// LayerNorm parameters (names as in Hugging Face).
bool uses_weight_decay(const std::string& parameter_name);

// ||g||: the L2 norm of all gradients together, summed where they live (one kernel call for the whole list, see
// ops/reduce.h sum_of_squares) with one value read back. Parameters without a gradient are skipped.
float global_grad_norm(const std::vector<std::pair<std::string, Tensor>>& parameters);

struct OptimizerConfig {
  AdamWConfig adamw;           // lr is ignored: step() takes it from the schedule
  float max_grad_norm = 1.0f;  // <= 0 disables clipping
};

class AdamWOptimizer {
 public:
  // parameters: (Hugging Face name, leaf tensor requiring grad), e.g. Module::named_parameters().
  AdamWOptimizer(std::vector<std::pair<std::string, Tensor>> parameters, OptimizerConfig config);

  // Clips the gradients, applies one AdamW update at learning rate `lr` to every
  // parameter that has a gradient, and clears the gradients. Returns the global
  // gradient norm before clipping. The gradients are first multiplied by
  // grad_multiplier (1 / the loss scale, train/loss_scaler.h), the norm is that
  // of the multiplied gradients, and both happen as the kernels read them. When
  // the norm is not finite (an inf or NaN gradient), nothing is updated: the
  // gradients are cleared, the step is not counted, and the norm is returned.
  float step(float lr, float grad_multiplier = 1.0f);
  void zero_grad();
  int64_t steps_taken() const { return steps_taken_; }

  // The moments and step count, as safetensors ("m.<name>", "v.<name>", step in
  // the metadata), written atomically; load() checks names and shapes.
  absl::Status save(const std::string& path) const;
  absl::Status load(const std::string& path);

 private:
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<Tensor> m_, v_;
  OptimizerConfig config_;
  int64_t steps_taken_ = 0;
};

}  // namespace bertforge
