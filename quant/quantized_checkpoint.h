// quant/quantized_checkpoint.h — a state dict where some weights are quantized, in one safetensors file.
//
// The same container as FP checkpoints (docs/design.md "Formats"). A quantized parameter "X.weight" (N,K) is stored as
//   X.qweight   the codes   (I8 / U8, layout in quant/weight_quant.h)
//   X.scales    F32         (1) | (N) | (N, G)
//   X.zeros     U8          same shape as scales, asymmetric schemes only
// (a parameter whose name does not end in ".weight" keeps its full name before the suffix). Everything else
// (LayerNorm, biases, embeddings, the MLM decoder, ...) is stored as is under its own name. "__metadata__" holds
//   "format": "pt"
//   "bertforge.quant": {"format_version": 1,
//                       "tensors": {"X.weight": {"shape": [N, K], "scheme": {"bits": 4, ...}}, ...}}
// (the second value is a JSON document in a string, as safetensors metadata values are strings). The logical
// shape is needed because a packed row of ceil(K/2) bytes does not tell an even K from the odd K - 1.
//
// Loading checks, beyond what core/safetensors.h checks for the container: the metadata parses, has the known
// format version, and each scheme is valid; every quantized tensor has its .qweight and .scales (and .zeros exactly
// when asymmetric) with the dtype and shape the scheme and logical shape imply; scales are finite and > 0; zero
// points and codes lie in the scheme's range (including -128 in an 8-bit symmetric tensor, and the padding nibble of
// an odd K being 0); no .qweight / .scales / .zeros tensor is left that the metadata does not name; no two parameters
// of the metadata ("X.weight" and "X") share stored tensors; and no FP tensor shares a name with a quantized one. Errors are absl::Status naming the file, the tensor and the problem.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "quant/weight_quant.h"

namespace bertforge::quant {

inline constexpr int kQuantFormatVersion = 1;
inline constexpr const char* kQuantMetadataKey = "bertforge.quant";

struct QuantizedStateDict {
  std::vector<std::pair<std::string, Tensor>> fp;                  // stored as is, in file order
  std::vector<std::pair<std::string, QuantizedWeight>> quantized;  // by parameter name ("...dense.weight")

  const Tensor* find_fp(absl::string_view name) const;              // nullptr if absent
  const QuantizedWeight* find_quantized(absl::string_view name) const;  // nullptr if absent
};

// "X.weight" + ".qweight" -> "X.qweight"; "X" + ".qweight" -> "X.qweight".
std::string quantized_tensor_name(absl::string_view param_name, absl::string_view suffix);

// Writes atomically (temporary file, fsync, rename). Fails on a duplicate or colliding name.
absl::Status save_quantized_checkpoint(const std::string& path, const QuantizedStateDict& state);

// Reads and validates (see above). A plain FP checkpoint (no quantization metadata and no quantized tensors)
// loads with every tensor in `fp`.
absl::StatusOr<QuantizedStateDict> load_quantized_checkpoint(const std::string& path);
// The checks beyond the container's, on a safetensors file already read (load_quantized_checkpoint is
// read_safetensors then this); `path` names it in errors.
absl::StatusOr<QuantizedStateDict> quantized_state_from_safetensors(const SafetensorsFile& file,
                                                                    const std::string& path);

}  // namespace bertforge::quant
