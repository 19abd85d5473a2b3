// Central-difference gradient checker.
#include "autograd/gradcheck.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"

namespace bertforge::autograd {
namespace {

// Storage offsets (in elements) of every element of t, in row-major order.
std::vector<int64_t> element_offsets(const Tensor& t) {
  std::vector<int64_t> offsets;
  offsets.reserve(t.numel());
  std::vector<int64_t> index(t.dim(), 0);
  for (int64_t n = 0; n < t.numel(); ++n) {
    int64_t o = t.offset();
    for (int64_t d = 0; d < t.dim(); ++d) o += index[d] * t.stride(d);
    offsets.push_back(o);
    for (int64_t d = t.dim() - 1; d >= 0; --d) {
      if (++index[d] < t.size(d)) break;
      index[d] = 0;
    }
  }
  return offsets;
}

double projected(const Tensor& out, const std::vector<float>& weights) {
  std::vector<float> values = out.to_float_vector();
  double sum = 0;
  for (size_t i = 0; i < values.size(); ++i) sum += static_cast<double>(weights[i]) * values[i];
  return sum;
}

}  // namespace

absl::Status gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  // Analytic gradients through the graph.
  for (Tensor t : inputs) {
    if (t.requires_grad()) t.set_grad(Tensor());
  }
  Tensor out = fn(inputs);
  if (!out.requires_grad()) return absl::InvalidArgumentError("gradcheck: output does not require grad");
  std::mt19937 rng(options.seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> weights(out.numel());
  for (float& w : weights) w = uniform(rng);
  backward(out, Tensor::from_vector(weights, out.shape()));

  NoGradGuard no_grad;
  for (size_t input_index = 0; input_index < inputs.size(); ++input_index) {
    Tensor x = inputs[input_index];
    if (!x.requires_grad()) continue;
    if (x.dtype() != DType::kF32 || !x.device().is_cpu()) {
      return absl::InvalidArgumentError(absl::StrCat("gradcheck: input ", input_index, " must be f32 on the CPU"));
    }
    if (!x.grad().defined()) {
      return absl::InternalError(absl::StrCat("gradcheck: input ", input_index, " received no gradient"));
    }
    std::vector<float> analytic = x.grad().to_float_vector();
    float* base = static_cast<float*>(x.storage()->data());
    std::vector<int64_t> offsets = element_offsets(x);
    for (size_t j = 0; j < offsets.size(); ++j) {
      float& element = base[offsets[j]];
      const float original = element;
      element = static_cast<float>(original + options.eps);
      double plus = projected(fn(inputs), weights);
      element = static_cast<float>(original - options.eps);
      double minus = projected(fn(inputs), weights);
      element = original;
      double numeric = (plus - minus) / (2 * options.eps);
      double diff = std::fabs(analytic[j] - numeric);
      if (!(diff <= options.atol + options.rtol * std::fabs(numeric))) {
        return absl::InternalError(absl::StrCat("gradcheck: input ", input_index, " ", x.shape_str(),
                                                " element ", j, ": analytic ", analytic[j], " vs numeric ",
                                                numeric, " (|diff| ", diff, ")"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace bertforge::autograd
