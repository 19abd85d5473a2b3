// AdamW with weight-decay groups, gradient clipping and the LR schedule.
#include "train/optimizer.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace bertforge {

float LrSchedule::lr_at(int64_t step) const {
  BF_CHECK(step >= 1, "LrSchedule: steps count from 1, got ", step);
  if (step <= warmup_steps) return peak_lr * static_cast<float>(step) / static_cast<float>(warmup_steps);
  if (step >= total_steps) return 0.0f;
  const int64_t decay_steps = total_steps - warmup_steps;
  return peak_lr * static_cast<float>(total_steps - step) / static_cast<float>(decay_steps);
}

bool uses_weight_decay(const std::string& parameter_name) {
  return !absl::EndsWith(parameter_name, ".bias") && !absl::StrContains(parameter_name, "LayerNorm.");
}

float global_grad_norm(const std::vector<std::pair<std::string, Tensor>>& parameters) {
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const auto& [name, parameter] : parameters) {
    if (parameter.grad().defined()) grads.push_back(parameter.grad());
  }
  return std::sqrt(sum_of_squares(grads).to(Device::cpu()).item<float>());
}

AdamWOptimizer::AdamWOptimizer(std::vector<std::pair<std::string, Tensor>> parameters, OptimizerConfig config)
    : parameters_(std::move(parameters)), config_(config) {
  for (const auto& [name, parameter] : parameters_) {
    BF_CHECK(parameter.requires_grad(), "AdamWOptimizer: parameter ", name, " does not require grad");
    m_.push_back(Tensor::zeros_like(parameter));
    v_.push_back(Tensor::zeros_like(parameter));
  }
}

float AdamWOptimizer::step(float lr, float grad_multiplier) {
  BF_CHECK(grad_multiplier > 0.0f && std::isfinite(grad_multiplier), "AdamWOptimizer::step: gradient multiplier ",
           grad_multiplier, " must be finite and positive");
  const float norm = global_grad_norm(parameters_) * grad_multiplier;
  if (!std::isfinite(norm)) {
    zero_grad();
    return norm;
  }
  // Clipping scales every gradient by max_norm / norm; the update applies that factor, and the multiplier, as it
  // reads them.
  const float grad_scale = grad_multiplier * (config_.max_grad_norm > 0.0f && norm > config_.max_grad_norm
                                                  ? config_.max_grad_norm / norm
                                                  : 1.0f);
  ++steps_taken_;
  std::vector<AdamWTensors> updates;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& [name, parameter] = parameters_[i];
    if (parameter.grad().defined()) {
      updates.push_back({parameter, parameter.grad(), m_[i], v_[i], uses_weight_decay(name)});
    }
  }
  AdamWConfig adamw = config_.adamw;
  adamw.lr = lr;
  adamw_step_many(updates, adamw, grad_scale, steps_taken_);
  zero_grad();
  return norm;
}

void AdamWOptimizer::zero_grad() {
  for (auto& [name, parameter] : parameters_) parameter.set_grad(Tensor());
}

absl::Status AdamWOptimizer::save(const std::string& path) const {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    tensors.emplace_back("m." + parameters_[i].first, m_[i]);
    tensors.emplace_back("v." + parameters_[i].first, v_[i]);
  }
  return write_safetensors(path, tensors, {{"format", "bertforge-adamw"}, {"step", absl::StrCat(steps_taken_)}});
}

absl::Status AdamWOptimizer::load(const std::string& path) {
  BF_ASSIGN_OR_RETURN(SafetensorsFile file, read_safetensors(path));
  auto format = file.metadata.find("format");
  auto step = file.metadata.find("step");
  int64_t steps_taken = 0;
  if (format == file.metadata.end() || format->second != "bertforge-adamw" || step == file.metadata.end() ||
      !absl::SimpleAtoi(step->second, &steps_taken) || steps_taken < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a bertforge optimizer state (needs metadata format=bertforge-adamw and a step)"));
  }
  if (file.tensors.size() != 2 * parameters_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds ", file.tensors.size(), " moment tensors, the model needs ",
                                                   2 * parameters_.size()));
  }
  // Check everything before changing anything: a failed load leaves the optimizer as it was.
  std::vector<const Tensor*> moments;
  for (const auto& [name, parameter] : parameters_) {
    for (const char* prefix : {"m.", "v."}) {
      const Tensor* t = file.find(prefix + name);
      if (t == nullptr) return absl::InvalidArgumentError(absl::StrCat(path, ": missing ", prefix, name));
      if (t->shape() != parameter.shape() || t->dtype() != DType::kF32) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": ", prefix, name, " is ", t->str(), ", expected f32 ",
                                                       parameter.shape_str()));
      }
      moments.push_back(t);
    }
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    m_[i] = moments[2 * i]->to(parameters_[i].second.device());
    v_[i] = moments[2 * i + 1]->to(parameters_[i].second.device());
  }
  steps_taken_ = steps_taken;
  return absl::OkStatus();
}

}  // namespace bertforge
