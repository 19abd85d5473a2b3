// quant/quant_scheme.cpp — QuantScheme validation and its JSON form.
#include "quant/quant_scheme.h"

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace bertforge::quant {

const char* granularity_name(Granularity g) {
  switch (g) {
    case Granularity::kPerTensor: return "per_tensor";
    case Granularity::kPerChannel: return "per_channel";
    case Granularity::kPerGroup: return "per_group";
  }
  return "?";
}

absl::StatusOr<Granularity> granularity_from_name(absl::string_view name) {
  for (Granularity g : {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup}) {
    if (name == granularity_name(g)) return g;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown quantization granularity \"", name,
                                                 "\" (expected per_tensor, per_channel or per_group)"));
}

absl::Status QuantScheme::validate() const {
  if (bits < kMinBits || bits > kMaxBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization bits ", bits, " out of range [", kMinBits, ", ", kMaxBits, "]"));
  }
  if (granularity == Granularity::kPerGroup && group_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("quantization group_size ", group_size, " must be >= 1"));
  }
  return absl::OkStatus();
}

Json QuantScheme::to_json() const {
  Json json = Json::object();
  json.set("bits", bits);
  json.set("symmetric", symmetric);
  json.set("granularity", granularity_name(granularity));
  if (granularity == Granularity::kPerGroup) json.set("group_size", group_size);
  return json;
}

absl::StatusOr<QuantScheme> QuantScheme::from_json(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError(absl::StrCat("scheme is not a JSON object: ", json.dump()));
  for (const auto& [key, value] : json.as_object()) {
    if (key != "bits" && key != "symmetric" && key != "granularity" && key != "group_size") {
      return absl::InvalidArgumentError(absl::StrCat("unknown key \"", key, "\" in scheme ", json.dump()));
    }
  }
  QuantScheme s;
  const Json* bits = json.get("bits");
  const Json* symmetric = json.get("symmetric");
  const Json* granularity = json.get("granularity");
  if (bits == nullptr || !bits->is_int64()) {
    return absl::InvalidArgumentError(absl::StrCat("scheme needs an integer \"bits\": ", json.dump()));
  }
  if (symmetric == nullptr || !symmetric->is_bool()) {
    return absl::InvalidArgumentError(absl::StrCat("scheme needs a boolean \"symmetric\": ", json.dump()));
  }
  if (granularity == nullptr || !granularity->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("scheme needs a string \"granularity\": ", json.dump()));
  }
  if (bits->as_int64() < kMinBits || bits->as_int64() > kMaxBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization bits ", bits->as_int64(), " out of range [", kMinBits, ", ", kMaxBits, "]"));
  }
  s.bits = static_cast<int>(bits->as_int64());
  s.symmetric = symmetric->as_bool();
  absl::StatusOr<Granularity> g = granularity_from_name(granularity->as_string());
  if (!g.ok()) return g.status();
  s.granularity = *g;
  const Json* group_size = json.get("group_size");
  if (s.granularity == Granularity::kPerGroup) {
    if (group_size == nullptr || !group_size->is_int64()) {
      return absl::InvalidArgumentError(absl::StrCat("per_group scheme needs an integer \"group_size\": ", json.dump()));
    }
    s.group_size = group_size->as_int64();
  } else if (group_size != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"group_size\" given for a ", granularity_name(s.granularity), " scheme: ", json.dump()));
  }
  BF_RETURN_IF_ERROR(s.validate());
  return s;
}

std::string QuantScheme::str() const {
  std::string out = absl::StrCat("int", bits, symmetric ? " symmetric " : " asymmetric ", granularity_name(granularity));
  if (granularity == Granularity::kPerGroup) absl::StrAppend(&out, "(", group_size, ")");
  return out;
}

}  // namespace bertforge::quant
