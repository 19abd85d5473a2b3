// Fuzzes the quantized-checkpoint loader: the "bertforge.quant" scheme metadata (a JSON document inside a
// safetensors metadata string) and its consistency with the stored .qweight / .scales / .zeros tensors (dtypes,
// shapes, code and zero-point ranges, leftover tensors), through parse_safetensors then
// quantized_state_from_safetensors (quant/quantized_checkpoint.h), the two halves of load_quantized_checkpoint.
// Properties: a refusal is a Status with a message; an accepted state's quantized weights decode in range.
#include <cstdint>

#include "core/safetensors.h"
#include "quant/quantized_checkpoint.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bertforge::quant::QuantizedStateDict;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string name = "fuzz.safetensors";
  absl::StatusOr<bertforge::SafetensorsFile> file = bertforge::parse_safetensors(bytes, name);
  if (bertforge::fuzz::refused(file.status())) return 0;
  absl::StatusOr<QuantizedStateDict> state = bertforge::quant::quantized_state_from_safetensors(*file, name);
  if (bertforge::fuzz::refused(state.status())) return 0;
  for (const auto& [param, weight] : state->quantized) {
    FUZZ_CHECK(state->find_quantized(param) != nullptr);
    if (weight.rows > 0 && weight.cols > 0) {  // the first and last codes, read as the int8 kernels read them
      const int32_t first = weight.code(0, 0), last = weight.code(weight.rows - 1, weight.cols - 1);
      FUZZ_CHECK(first >= weight.scheme.qmin() && first <= weight.scheme.qmax());
      FUZZ_CHECK(last >= weight.scheme.qmin() && last <= weight.scheme.qmax());
    }
  }
  return 0;
}
