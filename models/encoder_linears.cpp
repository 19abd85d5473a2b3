// models/encoder_linears.cpp — encoder layer names and the encoder Linears' input sites (see encoder_linears.h).
#include "models/encoder_linears.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace bertforge {
namespace {

constexpr absl::string_view kEncoderLayers = "bert.encoder.layer.";

}  // namespace

std::string encoder_layer_name(int64_t layer) { return absl::StrCat(kEncoderLayers, layer); }

std::string encoder_layer_prefix(int64_t layer) { return absl::StrCat(kEncoderLayers, layer, "."); }

std::optional<std::pair<int64_t, absl::string_view>> split_encoder_layer_name(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kEncoderLayers)) return std::nullopt;
  const size_t dot = name.find('.');
  if (dot == 0 || dot == absl::string_view::npos || dot + 1 == name.size()) return std::nullopt;
  for (char c : name.substr(0, dot)) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int64_t layer = 0;
  if (!absl::SimpleAtoi(name.substr(0, dot), &layer)) return std::nullopt;  // too many digits
  return std::make_pair(layer, name.substr(dot + 1));
}

TapSite layer_input_site(int64_t layer) {
  return layer == 0 ? TapSite{kEmbeddingsLayer, TapPoint::kEmbeddingLayerNorm}
                    : TapSite{layer - 1, TapPoint::kLayerOutput};
}

std::string EncoderLinearInfo::weight_name(int64_t layer) const {
  return absl::StrCat(encoder_layer_prefix(layer), name, ".weight");
}

}  // namespace bertforge
