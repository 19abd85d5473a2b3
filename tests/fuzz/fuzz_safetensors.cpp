// Fuzzes the safetensors reader: the 8-byte header length, the JSON header ("__metadata__", dtype, shape,
// data_offsets of every tensor) and the tiling of the data region, through parse_safetensors (core/safetensors.h),
// the in-memory twin of read_safetensors that every tool's checkpoint load goes through.
// Properties: a refusal is a Status with a message; an accepted file's tensors hold exactly the data region,
// so nothing was allocated beyond the file's size.
#include <cstdint>

#include "core/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<bertforge::SafetensorsFile> file = bertforge::parse_safetensors(bytes, "fuzz.safetensors");
  if (bertforge::fuzz::refused(file.status())) return 0;
  uint64_t tensor_bytes = 0;
  for (const auto& [name, tensor] : file->tensors) {
    FUZZ_CHECK(!name.empty() && name != "__metadata__");
    FUZZ_CHECK(file->find(name) != nullptr);
    tensor_bytes += static_cast<uint64_t>(tensor.nbytes());
  }
  FUZZ_CHECK(tensor_bytes + 8 <= size);
  return 0;
}
