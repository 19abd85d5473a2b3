// quant/awq_scales.h — AWQ's "scaled activation" for BERT's FFN: the per-channel multiply that stays in the
// quantized model because GELU cannot absorb a scale.
//
// AWQ (Lin et al.) quantizes W diag(s) and feeds the Linear X diag(1/s), folding 1/s into the op that produces X.
// For output.dense (input: the GELU output, I channels) no such op exists (gelu(x) / s != gelu(x / s)), so the
// quantized model multiplies the GELU output by 1/s at inference, as the paper's scaled activation does:
//   gelu tap of layer i:   g -> g * (1 / s_i)        s_i (I), > 0 and finite
//   output.dense weight:   W -> W diag(s_i)          (quantized; done by quant/awq.h)
// The multiply runs through the activation hook at the `gelu` tap point (models/forward_context.h).
//
// In the checkpoint s_i is an FP tensor "bert.encoder.layer.<i>.output.dense.awq_input_scale" (I); it is not a
// model parameter, so the loader takes these tensors out of the state before building the model
// (take_awq_input_scales) and installs awq_scaled_activation_hook.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "models/forward_context.h"
#include "models/module.h"

namespace bertforge::quant {

// "bert.encoder.layer.<layer>.output.dense.awq_input_scale".
std::string awq_input_scale_name(int64_t layer);

// The GELU-output scales of every encoder layer, indexed by layer; an undefined tensor: that layer is unscaled.
struct AwqInputScales {
  std::vector<Tensor> gelu;  // each (I) F32, or undefined

  bool empty() const;
  int64_t count() const;  // layers with a scale
};

// Removes every "*.awq_input_scale" tensor from `tensors` and returns them by layer. InvalidArgument for a name
// that is not "bert.encoder.layer.<i>.output.dense.awq_input_scale" with i < num_layers, a shape other than
// (intermediate_size), a dtype other than F32, or a value that is not finite and > 0.
absl::StatusOr<AwqInputScales> take_awq_input_scales(StateDict& tensors, int64_t num_layers,
                                                      int64_t intermediate_size);

// The hook for BertForMaskedLM::set_hook: at layer i's `gelu` tap, value (B,T,I) -> value * (1 / s_i); every
// other site passes through. `next` (may be empty) then sees the result, so another hook (activation
// fake-quantization) composes after the scaling.
ActivationHook awq_scaled_activation_hook(const AwqInputScales& scales, ActivationHook next = {});

}  // namespace bertforge::quant
