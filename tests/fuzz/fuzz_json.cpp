// Fuzzes the JSON parser (core/json.h), which reads every JSON file bertforge takes (safetensors headers,
// config.json, trainer state, activation specs, metrics), through Json::parse.
// Properties: a refusal is a Status with a message; an accepted value dumps (compact and indented) to text that
// parses back to the same value; nesting deeper than Json::kMaxDepth is refused, not a stack overflow.
#include <cstdint>

#include "core/json.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bertforge::Json;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Json> value = Json::parse(text);
  if (bertforge::fuzz::refused(value.status())) return 0;
  for (int indent : {-1, 2}) {
    absl::StatusOr<Json> again = Json::parse(value->dump(indent));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(*again == *value);
  }
  return 0;
}
