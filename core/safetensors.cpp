// safetensors reader (validating every header field) and atomic writer.
#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/file_io.h"
#include "core/json.h"

namespace bertforge {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and is copied byte for byte");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit

// One tensor entry of the header.
struct EntryInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // within the data region
};

std::string encode_u64_le(uint64_t v) {
  std::string bytes(8, '\0');
  for (int k = 0; k < 8; ++k) bytes[k] = static_cast<char>((v >> (8 * k)) & 0xFF);
  return bytes;
}

uint64_t decode_u64_le(const unsigned char* bytes) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = (v << 8) | bytes[k];
  return v;
}

// Errors carry the file name first, then what is wrong with it.
absl::Status invalid(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": invalid safetensors file: ", what));
}
absl::Status truncated(const std::string& path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(path, ": truncated safetensors file: ", what));
}

// Fills `out` from a JSON array of non-negative integers; false if `value` is anything else.
bool parse_nonnegative_ints(const Json& value, std::vector<int64_t>* out) {
  if (!value.is_array()) return false;
  out->clear();
  for (const Json& element : value.as_array()) {
    if (!element.is_int64() || element.as_int64() < 0) return false;
    out->push_back(element.as_int64());
  }
  return true;
}

// Checks one tensor entry's fields and their mutual consistency.
absl::StatusOr<EntryInfo> parse_entry(const std::string& path, const std::string& name, const Json& entry,
                                      uint64_t data_size) {
  const std::string where = absl::StrCat("tensor \"", name, "\"");
  if (!entry.is_object()) return invalid(path, absl::StrCat(where, ": entry is not a JSON object"));
  const Json* dtype = entry.get("dtype");
  const Json* shape = entry.get("shape");
  const Json* offsets = entry.get("data_offsets");
  if (dtype == nullptr || shape == nullptr || offsets == nullptr) {
    return invalid(path, absl::StrCat(where, ": entry needs \"dtype\", \"shape\" and \"data_offsets\", got ",
                                      entry.dump()));
  }
  EntryInfo info;
  info.name = name;
  if (!dtype->is_string()) return invalid(path, absl::StrCat(where, ": \"dtype\" is not a string"));
  absl::StatusOr<DType> dt = dtype_from_safetensors_name(dtype->as_string());
  if (!dt.ok()) return invalid(path, absl::StrCat(where, ": ", dt.status().message()));
  info.dtype = *dt;
  if (!parse_nonnegative_ints(*shape, &info.shape)) {
    return invalid(path, absl::StrCat(where, ": \"shape\" must be a list of non-negative integers, got ",
                                      shape->dump()));
  }
  std::vector<int64_t> range;
  if (!parse_nonnegative_ints(*offsets, &range) || range.size() != 2) {
    return invalid(path, absl::StrCat(where, ": \"data_offsets\" must be [begin, end] with non-negative integers, got ",
                                      offsets->dump()));
  }
  info.begin = static_cast<uint64_t>(range[0]);
  info.end = static_cast<uint64_t>(range[1]);
  if (info.end < info.begin) {
    return invalid(path, absl::StrCat(where, ": data_offsets [", info.begin, ", ", info.end, "] end before they begin"));
  }
  if (info.end > data_size) {
    return truncated(path, absl::StrCat(where, " ends at byte ", info.end, " of the data region, which holds only ",
                                        data_size, " bytes"));
  }
  // The shape's extent (its dimensions times the element size, an empty dimension counted as 1) must fit int64,
  // even when the tensor is empty: the strides multiply the other dimensions, so [0, 2^40, 2^40] is refused.
  int64_t extent = dtype_size(info.dtype);
  for (int64_t d : info.shape) {
    if (__builtin_mul_overflow(extent, std::max<int64_t>(d, 1), &extent)) {
      return invalid(path, absl::StrCat(where, ": shape ", shape_to_string(info.shape), " is too large"));
    }
  }
  const int64_t nbytes = shape_numel(info.shape) * dtype_size(info.dtype);
  if (info.end - info.begin != static_cast<uint64_t>(nbytes)) {
    return invalid(path, absl::StrCat(where, ": data_offsets [", info.begin, ", ", info.end, "] hold ",
                                      info.end - info.begin, " bytes, but ", dtype_safetensors_name(info.dtype),
                                      " ", shape_to_string(info.shape), " needs ", nbytes));
  }
  return info;
}

// The tensors, sorted by offset, must tile [0, data_size) exactly.
absl::Status check_coverage(const std::string& path, std::vector<const EntryInfo*> entries, uint64_t data_size) {
  std::sort(entries.begin(), entries.end(), [](const EntryInfo* a, const EntryInfo* b) {
    return std::make_pair(a->begin, a->end) < std::make_pair(b->begin, b->end);
  });
  uint64_t covered = 0;  // bytes [0, covered) belong to tensors seen so far
  const EntryInfo* previous = nullptr;
  for (const EntryInfo* e : entries) {
    if (e->begin < covered) {
      return invalid(path, absl::StrCat("tensor \"", e->name, "\" at [", e->begin, ", ", e->end,
                                        ") overlaps tensor \"", previous->name, "\", which ends at byte ", covered));
    }
    if (e->begin > covered) {
      return invalid(path, absl::StrCat("unused bytes [", covered, ", ", e->begin, ") in the data region before tensor \"",
                                        e->name, "\""));
    }
    covered = e->end;
    previous = e;
  }
  if (covered != data_size) {
    return invalid(path, absl::StrCat("the data region holds ", data_size, " bytes but the tensors cover only ",
                                      covered, " (trailing bytes)"));
  }
  return absl::OkStatus();
}

}  // namespace

const Tensor* SafetensorsFile::find(absl::string_view name) const {
  for (const auto& [tensor_name, tensor] : tensors) {
    if (tensor_name == name) return &tensor;
  }
  return nullptr;
}

// ---- Reading ---------------------------------------------------------------------------

namespace {

// A file's bytes already in memory, read like a FileReader (size() and read_at()), so that files and buffers go
// through the same reader below.
class MemoryReader {
 public:
  explicit MemoryReader(absl::string_view bytes) : bytes_(bytes) {}
  uint64_t size() const { return bytes_.size(); }
  absl::Status read_at(uint64_t offset, void* dst, size_t n) const {
    if (offset > bytes_.size() || n > bytes_.size() - offset) {
      return absl::OutOfRangeError(absl::StrCat("read of ", n, " bytes at ", offset, " past the end (",
                                                bytes_.size(), " bytes)"));
    }
    if (n > 0) std::memcpy(dst, bytes_.data() + offset, n);
    return absl::OkStatus();
  }

 private:
  absl::string_view bytes_;
};

// Reads and checks a whole safetensors file from `file` (a FileReader or a MemoryReader); `path` names it in
// errors. Nothing larger than the file is allocated: the header is at most the file's size, and each tensor's
// bytes are allocated only after the header has been checked to tile the data region exactly.
template <typename Reader>
absl::StatusOr<SafetensorsFile> read_safetensors_from(Reader& file, const std::string& path) {
  if (file.size() < 8) {
    return truncated(path, absl::StrCat("the file has ", file.size(), " bytes, fewer than the 8-byte header length"));
  }
  unsigned char length_bytes[8];
  BF_RETURN_IF_ERROR(file.read_at(0, length_bytes, 8));
  const uint64_t header_size = decode_u64_le(length_bytes);
  if (header_size > kMaxHeaderBytes) {
    return invalid(path, absl::StrCat("header length ", header_size, " exceeds the limit of ", kMaxHeaderBytes,
                                      " bytes"));
  }
  if (header_size > file.size() - 8) {
    return truncated(path, absl::StrCat("header length ", header_size, " runs past the end of the file (",
                                        file.size(), " bytes)"));
  }
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file.size() - data_start;

  std::string header_text(header_size, '\0');
  BF_RETURN_IF_ERROR(file.read_at(8, header_text.data(), header_text.size()));
  absl::StatusOr<Json> header = Json::parse(header_text);
  if (!header.ok()) return invalid(path, absl::StrCat("header: ", header.status().message()));
  if (!header->is_object()) return invalid(path, "header is not a JSON object");

  SafetensorsFile result;
  std::vector<EntryInfo> entries;
  for (const auto& [name, value] : header->as_object()) {
    if (name == "__metadata__") {
      if (!value.is_object()) return invalid(path, "\"__metadata__\" is not a JSON object");
      for (const auto& [key, text] : value.as_object()) {
        if (!text.is_string()) {
          return invalid(path, absl::StrCat("\"__metadata__\" value of \"", key, "\" is not a string: ", text.dump()));
        }
        result.metadata[key] = text.as_string();
      }
      continue;
    }
    BF_ASSIGN_OR_RETURN(EntryInfo info, parse_entry(path, name, value, data_size));
    entries.push_back(std::move(info));
  }
  std::vector<const EntryInfo*> by_offset;
  for (const EntryInfo& e : entries) by_offset.push_back(&e);
  BF_RETURN_IF_ERROR(check_coverage(path, by_offset, data_size));

  for (const EntryInfo& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    BF_RETURN_IF_ERROR(file.read_at(data_start + e.begin, t.raw_data(), e.end - e.begin));
    result.tensors.emplace_back(e.name, std::move(t));
  }
  return result;
}

}  // namespace

absl::StatusOr<SafetensorsFile> read_safetensors(const std::string& path) {
  FileReader file;
  BF_RETURN_IF_ERROR(file.open(path));
  return read_safetensors_from(file, path);
}

absl::StatusOr<SafetensorsFile> parse_safetensors(absl::string_view bytes, const std::string& name) {
  MemoryReader file(bytes);
  return read_safetensors_from(file, name);
}

// ---- Writing ---------------------------------------------------------------------------

absl::Status write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  std::set<absl::string_view> names;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__") {
      return absl::InvalidArgumentError(absl::StrCat("cannot write ", path, ": invalid tensor name \"", name, "\""));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write ", path, ": duplicate tensor name \"", name, "\""));
    }
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write ", path, ": tensor \"", name, "\" is undefined"));
    }
  }

  // Data order: decreasing element size, then the caller's order.
  std::vector<size_t> data_order(tensors.size());
  std::iota(data_order.begin(), data_order.end(), 0);
  std::stable_sort(data_order.begin(), data_order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });
  std::vector<uint64_t> begin(tensors.size());
  uint64_t offset = 0;
  for (size_t k : data_order) {
    begin[k] = offset;
    offset += static_cast<uint64_t>(tensors[k].second.nbytes());
  }

  // Header in the caller's order, padded with spaces to a multiple of 8 bytes.
  Json::Object header;
  if (!metadata.empty()) {
    Json::Object meta(metadata.begin(), metadata.end());
    header.emplace_back("__metadata__", std::move(meta));
  }
  for (size_t k = 0; k < tensors.size(); ++k) {
    const Tensor& t = tensors[k].second;
    Json::Array shape(t.shape().begin(), t.shape().end());
    Json::Array data_offsets{Json(begin[k]), Json(begin[k] + t.nbytes())};
    Json::Object entry{{"dtype", dtype_safetensors_name(t.dtype())},
                       {"shape", std::move(shape)},
                       {"data_offsets", std::move(data_offsets)}};
    header.emplace_back(tensors[k].first, std::move(entry));
  }
  std::string header_text = Json(std::move(header)).dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  AtomicFileWriter file;
  BF_RETURN_IF_ERROR(file.open(path));
  BF_RETURN_IF_ERROR(file.write(encode_u64_le(header_text.size())));
  BF_RETURN_IF_ERROR(file.write(header_text));
  for (size_t k : data_order) {
    const Tensor host = tensors[k].second.to(Device::cpu()).contiguous();
    BF_RETURN_IF_ERROR(file.write(host.raw_data(), static_cast<size_t>(host.nbytes())));
  }
  return file.commit();
}

}  // namespace bertforge
