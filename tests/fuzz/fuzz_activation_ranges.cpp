// Fuzzes the activation-range files of quantized models: the activation spec (<model>.activations.json, with
// its calibration ranges), read as load_quantized_bert reads it — Json::parse then ActivationQuantSpec::from_json
// (quant/quantized_model.h) — and the range table alone, ActivationRangeTable::from_json (quant/calibration.h).
// Properties: a refusal is a Status with a message; accepted ranges are finite with min <= max and survive
// to_json / from_json.
#include <cmath>
#include <cstdint>

#include "core/json.h"
#include "quant/calibration.h"
#include "quant/quantized_model.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

void check_ranges(const bertforge::ActivationRangeTable& table) {
  for (const auto& [name, range] : table.ranges) {
    FUZZ_CHECK(std::isfinite(range.min) && std::isfinite(range.max) && range.min <= range.max);
  }
  absl::StatusOr<bertforge::ActivationRangeTable> again =
      bertforge::ActivationRangeTable::from_json(table.to_json());
  FUZZ_CHECK(again.ok() && again->ranges.size() == table.ranges.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bertforge::ActivationRangeTable;
  using bertforge::quant::ActivationQuantSpec;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<bertforge::Json> json = bertforge::Json::parse(text);
  if (!json.ok()) return 0;  // fuzz_json covers the parser itself
  absl::StatusOr<ActivationQuantSpec> spec = ActivationQuantSpec::from_json(*json);
  if (!bertforge::fuzz::refused(spec.status())) check_ranges(spec->calibration);
  absl::StatusOr<ActivationRangeTable> table = ActivationRangeTable::from_json(*json);
  if (!bertforge::fuzz::refused(table.status())) check_ranges(*table);
  return 0;
}
