// Fuzzes the reading of a model's config.json (BertConfig, models/bert_config.h): Json::parse then
// BertConfig::from_json, the two steps of BertConfig::load that every tool loading a model takes.
// Properties: a refusal is a Status with a message; an accepted config validates and survives
// to_json / from_json unchanged.
#include <cstdint>

#include "core/json.h"
#include "models/bert_config.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bertforge::BertConfig;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<bertforge::Json> json = bertforge::Json::parse(text);
  if (!json.ok()) return 0;  // fuzz_json covers the parser itself
  absl::StatusOr<BertConfig> config = BertConfig::from_json(*json);
  if (bertforge::fuzz::refused(config.status())) return 0;
  FUZZ_CHECK(config->validate().ok());
  absl::StatusOr<BertConfig> again = BertConfig::from_json(config->to_json());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->to_json() == config->to_json());
  return 0;
}
