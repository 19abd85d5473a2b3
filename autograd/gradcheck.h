// Numeric gradient check by central differences, used by every op test.
//
// The op's output is projected on fixed random weights w, L = sum(w * fn(x)),
// so one backward pass gives dL/dx for every input; each input element is then
// nudged by +-eps and (L+ - L-) / 2eps is compared with the analytic value.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace bertforge::autograd {

struct GradcheckOptions {
  double eps = 1e-3;   // finite-difference step
  double atol = 1e-3;  // pass if |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-2;
  uint32_t seed = 1234;  // for the projection weights
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>& inputs)>;

// Checks the gradient of fn w.r.t. every input that requires grad (f32, CPU).
// Returns OK, or an error naming the first input and element that disagree.
absl::Status gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                       const GradcheckOptions& options = {});

}  // namespace bertforge::autograd
