// quant/awq_scales.cpp — the checkpoint form and the inference hook of AWQ's scaled GELU output (see awq_scales.h).
#include "quant/awq_scales.h"

#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "ops/elementwise.h"

namespace bertforge::quant {
namespace {

constexpr absl::string_view kPrefix = "bert.encoder.layer.";
constexpr absl::string_view kSuffix = ".output.dense.awq_input_scale";
constexpr absl::string_view kMarker = ".awq_input_scale";

}  // namespace

std::string awq_input_scale_name(int64_t layer) { return absl::StrCat(kPrefix, layer, kSuffix); }

bool AwqInputScales::empty() const { return count() == 0; }

int64_t AwqInputScales::count() const {
  int64_t n = 0;
  for (const Tensor& s : gelu) n += s.defined() ? 1 : 0;
  return n;
}

absl::StatusOr<AwqInputScales> take_awq_input_scales(StateDict& tensors, int64_t num_layers,
                                                      int64_t intermediate_size) {
  AwqInputScales scales;
  scales.gelu.resize(static_cast<size_t>(num_layers));
  StateDict rest;
  for (auto& [name, tensor] : tensors) {
    if (!absl::EndsWith(name, kMarker)) {
      rest.emplace_back(std::move(name), std::move(tensor));
      continue;
    }
    absl::string_view index = name;
    int64_t layer = -1;
    if (!absl::ConsumePrefix(&index, kPrefix) || !absl::ConsumeSuffix(&index, kSuffix) ||
        !absl::SimpleAtoi(index, &layer) || layer < 0 || layer >= num_layers) {
      return absl::InvalidArgumentError(absl::StrCat("AWQ input scale ", name, ": expected ",
                                                     awq_input_scale_name(0), " with a layer below ", num_layers));
    }
    if (tensor.dtype() != DType::kF32 || tensor.shape() != Shape{intermediate_size}) {
      return absl::InvalidArgumentError(absl::StrCat("AWQ input scale ", name, ": expected f32 [",
                                                     intermediate_size, "], got ", tensor.str()));
    }
    for (float v : tensor.to_float_vector()) {
      if (!std::isfinite(v) || v <= 0.0f) {
        return absl::InvalidArgumentError(
            absl::StrCat("AWQ input scale ", name, ": values must be finite and > 0, found ", v));
      }
    }
    if (scales.gelu[static_cast<size_t>(layer)].defined()) {
      return absl::InvalidArgumentError(absl::StrCat("AWQ input scale ", name, " given twice"));
    }
    scales.gelu[static_cast<size_t>(layer)] = tensor.contiguous();
  }
  tensors = std::move(rest);
  return scales;
}

ActivationHook awq_scaled_activation_hook(const AwqInputScales& scales, ActivationHook next) {
  auto inverse = std::make_shared<std::vector<Tensor>>();
  for (const Tensor& s : scales.gelu) {
    if (!s.defined()) {
      inverse->emplace_back();
      continue;
    }
    std::vector<float> inv = s.to_float_vector();
    for (float& v : inv) v = 1.0f / v;
    inverse->push_back(Tensor::from_vector(inv, s.shape()));
  }
  return [inverse, next = std::move(next)](const TapSite& site, const Tensor& value) {
    Tensor out = value;
    if (site.point == TapPoint::kGelu && site.layer >= 0 && site.layer < static_cast<int64_t>(inverse->size()) &&
        (*inverse)[static_cast<size_t>(site.layer)].defined()) {
      const Tensor& inv = (*inverse)[static_cast<size_t>(site.layer)];
      out = mul(value, inv.device() == value.device() ? inv : inv.to(value.device()));
    }
    return next ? next(site, out) : out;
  };
}

}  // namespace bertforge::quant
