// quant/quantized_checkpoint.cpp — writing and validating quantized safetensors checkpoints (rules in the header).
#include "quant/quantized_checkpoint.h"

#include <cmath>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/json.h"
#include "core/safetensors.h"

namespace bertforge::quant {
namespace {

constexpr absl::string_view kSuffixes[] = {".qweight", ".scales", ".zeros"};

absl::Status bad(absl::string_view path, absl::string_view tensor, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": invalid quantized checkpoint: tensor \"", tensor, "\": ", what));
}

// dtype and shape of one stored component.
absl::Status check_component(absl::string_view path, absl::string_view name, const Tensor& t, DType dtype,
                             const Shape& shape, const QuantScheme& scheme, const Shape& logical) {
  if (t.dtype() != dtype || t.shape() != shape) {
    return bad(path, name,
               absl::StrCat("expected ", dtype_safetensors_name(dtype), " ", shape_to_string(shape), " for ",
                            scheme.str(), " of logical shape ", shape_to_string(logical), ", got ",
                            dtype_safetensors_name(t.dtype()), " ", t.shape_str()));
  }
  return absl::OkStatus();
}

// Every rule a QuantizedWeight must satisfy, for the writer and the reader alike.
absl::Status check_quantized(absl::string_view path, const std::string& param, const QuantizedWeight& qw) {
  const QuantScheme& s = qw.scheme;
  if (absl::Status st = s.validate(); !st.ok()) return bad(path, param, st.message());
  if (qw.rows < 0 || qw.cols < 0) return bad(path, param, "negative logical shape");
  const Shape logical = qw.shape();
  const std::string qname = quantized_tensor_name(param, ".qweight");
  const std::string sname = quantized_tensor_name(param, ".scales");
  const std::string zname = quantized_tensor_name(param, ".zeros");
  if (!qw.qweight.defined()) return bad(path, qname, "missing");
  if (!qw.scales.defined()) return bad(path, sname, "missing");
  if (s.symmetric && qw.zeros.defined()) {
    return bad(path, zname, absl::StrCat("present, but the scheme ", s.str(), " has no zero points"));
  }
  if (!s.symmetric && !qw.zeros.defined()) {
    return bad(path, zname, absl::StrCat("missing; the scheme ", s.str(), " needs zero points"));
  }
  BF_RETURN_IF_ERROR(check_component(path, qname, qw.qweight, qweight_dtype(s), qweight_shape(s, qw.rows, qw.cols),
                                     s, logical));
  const Shape sshape = scales_shape(s, qw.rows, qw.cols);
  BF_RETURN_IF_ERROR(check_component(path, sname, qw.scales, DType::kF32, sshape, s, logical));
  if (!s.symmetric) BF_RETURN_IF_ERROR(check_component(path, zname, qw.zeros, DType::kU8, sshape, s, logical));

  // Values: scales finite and positive, zero points and codes within the scheme's range.
  const std::vector<float> scales = qw.scales.to_float_vector();
  for (size_t i = 0; i < scales.size(); ++i) {
    if (!(std::isfinite(scales[i]) && scales[i] > 0.0f)) {
      return bad(path, sname, absl::StrCat("scale ", scales[i], " at index ", i, " is not finite and > 0"));
    }
  }
  if (!s.symmetric) {
    const Tensor z = qw.zeros.contiguous();
    for (int64_t i = 0; i < z.numel(); ++i) {
      if (z.data<uint8_t>()[i] > s.qmax()) {
        return bad(path, zname, absl::StrCat("zero point ", int{z.data<uint8_t>()[i]}, " at index ", i,
                                             " outside [0, ", s.qmax(), "] of ", s.str()));
      }
    }
  }
  const Tensor q = qw.qweight.contiguous();
  const uint8_t* bytes = static_cast<const uint8_t*>(q.raw_data());
  const int64_t row_bytes = q.dim() == 2 ? q.size(1) : 0;
  // Only a tensor with codes is scanned: an empty one may still claim 2^62 rows (of no columns).
  const int64_t rows_to_scan = q.numel() > 0 ? qw.rows : 0;
  for (int64_t n = 0; n < rows_to_scan; ++n) {
    for (int64_t k = 0; k < qw.cols; ++k) {
      int32_t code = 0;
      if (s.packed()) {
        const uint8_t nibble = (bytes[n * row_bytes + k / 2] >> (4 * (k % 2))) & 0xF;
        code = s.symmetric ? static_cast<int8_t>(nibble << 4) >> 4 : nibble;
      } else {
        const uint8_t b = bytes[n * row_bytes + k];
        code = s.symmetric ? static_cast<int8_t>(b) : b;
      }
      if (code < s.qmin() || code > s.qmax()) {
        return bad(path, qname, absl::StrCat("code ", code, " at (", n, ", ", k, ") outside [", s.qmin(), ", ",
                                             s.qmax(), "] of ", s.str()));
      }
    }
    if (s.packed() && qw.cols % 2 == 1 && (bytes[n * row_bytes + row_bytes - 1] >> 4) != 0) {
      return bad(path, qname, absl::StrCat("padding nibble of row ", n, " (odd K = ", qw.cols, ") is not 0"));
    }
  }
  return absl::OkStatus();
}

bool has_quant_suffix(absl::string_view name) {
  for (absl::string_view suffix : kSuffixes) {
    if (absl::EndsWith(name, suffix)) return true;
  }
  return false;
}

// Logical shape [N, K] from the metadata.
absl::Status parse_logical_shape(absl::string_view path, const std::string& param, const Json* shape, int64_t* rows,
                                 int64_t* cols) {
  if (shape == nullptr || !shape->is_array() || shape->as_array().size() != 2 || !shape->as_array()[0].is_int64() ||
      !shape->as_array()[1].is_int64() || shape->as_array()[0].as_int64() < 0 ||
      shape->as_array()[1].as_int64() < 0) {
    return bad(path, param, absl::StrCat("metadata needs \"shape\": [N, K] of non-negative integers, got ",
                                         shape == nullptr ? "nothing" : shape->dump()));
  }
  *rows = shape->as_array()[0].as_int64();
  *cols = shape->as_array()[1].as_int64();
  return absl::OkStatus();
}

}  // namespace

const Tensor* QuantizedStateDict::find_fp(absl::string_view name) const {
  for (const auto& [n, t] : fp) {
    if (n == name) return &t;
  }
  return nullptr;
}

const QuantizedWeight* QuantizedStateDict::find_quantized(absl::string_view name) const {
  for (const auto& [n, q] : quantized) {
    if (n == name) return &q;
  }
  return nullptr;
}

std::string quantized_tensor_name(absl::string_view param_name, absl::string_view suffix) {
  absl::string_view base = param_name;
  if (absl::EndsWith(base, ".weight")) base.remove_suffix(7);
  return absl::StrCat(base, suffix);
}

absl::Status save_quantized_checkpoint(const std::string& path, const QuantizedStateDict& state) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::set<std::string> quantized_names;
  Json entries = Json::object();
  for (const auto& [param, qw] : state.quantized) {
    if (!quantized_names.insert(param).second) return bad(path, param, "quantized twice");
    BF_RETURN_IF_ERROR(check_quantized(path, param, qw));
    Json entry = Json::object();
    entry.set("shape", Json(Json::Array{Json(qw.rows), Json(qw.cols)}));
    entry.set("scheme", qw.scheme.to_json());
    entries.set(param, std::move(entry));
    tensors.emplace_back(quantized_tensor_name(param, ".qweight"), qw.qweight);
    tensors.emplace_back(quantized_tensor_name(param, ".scales"), qw.scales);
    if (!qw.scheme.symmetric) tensors.emplace_back(quantized_tensor_name(param, ".zeros"), qw.zeros);
  }
  for (const auto& [name, t] : state.fp) {
    if (quantized_names.count(name) != 0) return bad(path, name, "stored both as FP and quantized");
    if (has_quant_suffix(name)) {
      return bad(path, name, "an FP tensor may not end in .qweight, .scales or .zeros (reserved for quantized ones)");
    }
    tensors.emplace_back(name, t);
  }
  Json meta = Json::object();
  meta.set("format_version", kQuantFormatVersion);
  meta.set("tensors", std::move(entries));
  return write_safetensors(path, tensors, {{"format", "pt"}, {kQuantMetadataKey, meta.dump()}});
}

absl::StatusOr<QuantizedStateDict> load_quantized_checkpoint(const std::string& path) {
  BF_ASSIGN_OR_RETURN(SafetensorsFile file, read_safetensors(path));
  return quantized_state_from_safetensors(file, path);
}

absl::StatusOr<QuantizedStateDict> quantized_state_from_safetensors(const SafetensorsFile& file,
                                                                    const std::string& path) {
  QuantizedStateDict state;
  std::set<std::string> used;              // stored names that belong to a quantized parameter
  std::set<std::string> quantized_params;  // the parameters the metadata names
  // The stored tensors by name: a header may hold many, so no linear search per parameter.
  std::map<absl::string_view, const Tensor*> stored;
  for (const auto& [name, t] : file.tensors) stored.emplace(name, &t);
  const auto find_stored = [&](const std::string& name) -> const Tensor* {
    const auto it = stored.find(name);
    return it == stored.end() ? nullptr : it->second;
  };

  const auto meta_it = file.metadata.find(kQuantMetadataKey);
  if (meta_it != file.metadata.end()) {
    absl::StatusOr<Json> meta = Json::parse(meta_it->second);
    if (!meta.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": invalid quantized checkpoint: metadata \"",
                                                     kQuantMetadataKey, "\" is not JSON: ", meta.status().message()));
    }
    const Json* version = meta->get("format_version");
    const Json* tensors = meta->get("tensors");
    if (!meta->is_object() || version == nullptr || !version->is_int64() || tensors == nullptr ||
        !tensors->is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": invalid quantized checkpoint: metadata \"", kQuantMetadataKey,
                       "\" needs an integer \"format_version\" and an object \"tensors\", got ", meta->dump()));
    }
    if (version->as_int64() != kQuantFormatVersion) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": unsupported quantized checkpoint format_version ",
                                                     version->as_int64(), " (this build reads ",
                                                     kQuantFormatVersion, ")"));
    }
    for (const auto& [param, entry] : tensors->as_object()) {
      if (!entry.is_object()) return bad(path, param, "metadata entry is not a JSON object");
      QuantizedWeight qw;
      absl::StatusOr<QuantScheme> scheme =
          entry.get("scheme") != nullptr ? QuantScheme::from_json(*entry.get("scheme"))
                                         : absl::InvalidArgumentError("metadata entry has no \"scheme\"");
      if (!scheme.ok()) return bad(path, param, scheme.status().message());
      qw.scheme = *scheme;
      BF_RETURN_IF_ERROR(parse_logical_shape(path, param, entry.get("shape"), &qw.rows, &qw.cols));
      const std::string qname = quantized_tensor_name(param, ".qweight");
      const std::string sname = quantized_tensor_name(param, ".scales");
      const std::string zname = quantized_tensor_name(param, ".zeros");
      if (used.count(qname) != 0) {  // "X.weight" and "X" name the same stored tensors
        return bad(path, param, absl::StrCat("shares ", qname, " with another quantized parameter"));
      }
      if (const Tensor* t = find_stored(qname)) qw.qweight = *t;
      if (const Tensor* t = find_stored(sname)) qw.scales = *t;
      if (const Tensor* t = find_stored(zname)) qw.zeros = *t;
      BF_RETURN_IF_ERROR(check_quantized(path, param, qw));
      used.insert(qname);
      used.insert(sname);
      if (!qw.scheme.symmetric) used.insert(zname);
      quantized_params.insert(param);
      state.quantized.emplace_back(param, std::move(qw));
    }
  }

  for (const auto& [name, t] : file.tensors) {
    if (used.count(name) != 0) continue;
    if (has_quant_suffix(name)) {
      return bad(path, name,
                 meta_it == file.metadata.end()
                     ? absl::StrCat("looks quantized, but the file has no \"", kQuantMetadataKey, "\" metadata")
                     : absl::StrCat("is not named by the \"", kQuantMetadataKey, "\" metadata"));
    }
    if (quantized_params.count(name) != 0) return bad(path, name, "stored both as FP and quantized");
    state.fp.emplace_back(name, t);
  }
  return state;
}

}  // namespace bertforge::quant
