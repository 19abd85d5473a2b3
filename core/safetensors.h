// Reading and writing safetensors files, the checkpoint format (docs/design.md, "Formats").
//
// Layout: 8-byte little-endian header length N; N bytes of JSON header
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8; then the data region, where tensor
// bytes (row-major, little-endian) lie at [begin, end) relative to its start.
//
// Writing keeps the caller's tensor order in the header, but lays the data out
// by decreasing element size (stable), so every tensor starts at a multiple of
// its element size, as the reference (Rust) writer guarantees. The write is
// atomic (temporary file, fsync, rename; see core/file_io.h).
//
// Reading enforces what the reference reader enforces, with messages naming
// the file and the tensor: header length within the file and at most 100 MB;
// the header a JSON object (UTF-8, no duplicate keys) whose "__metadata__" maps
// strings to strings and whose other members each have a known "dtype", a
// "shape" of non-negative integers (whose product, empty dimensions counted as
// 1, fits int64) and "data_offsets" [begin, end] with
// end - begin == numel * element size; and the tensors, sorted by offset,
// tile the data region exactly: no overlap, no unused gap, no trailing bytes.
// Unknown extra fields in a tensor entry are ignored (as the reference does).
// A truncated file is reported as absl::DataLossError, a malformed header as
// absl::InvalidArgumentError. Nothing is allocated beyond the file's size
// (tests/fuzz/fuzz_safetensors.cpp fuzzes the reader).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"

namespace bertforge {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in header order; contiguous CPU tensors
  std::map<std::string, std::string> metadata;          // "__metadata__"; empty if absent
  const Tensor* find(absl::string_view name) const;      // nullptr if absent
};

absl::StatusOr<SafetensorsFile> read_safetensors(const std::string& path);
// The same checks on a file's bytes already in memory; `name` stands for the path in error messages.
absl::StatusOr<SafetensorsFile> parse_safetensors(absl::string_view bytes, const std::string& name);

// Tensors may have any dtype, strides and device (GPU tensors are copied to
// the host). Names must be unique, non-empty and not "__metadata__".
absl::Status write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace bertforge
