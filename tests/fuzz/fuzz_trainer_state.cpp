// Fuzzes what a resumed run reads from a checkpoint's trainer_state.json: read_trainer_state
// (train/checkpoint.h) on a checkpoint directory, then the members bert_train interprets — the data loader's
// position ("loader", LoaderPosition::from_json), the loss scale ("loss_scale", LossScaler::restore) and the
// run's settings ("run", compared with json_differences). read_trainer_state takes a directory, so each input is
// written to trainer_state.json in a per-process temporary directory.
// Properties: a refusal is a Status with a message; an accepted loader position survives to_json / from_json.
#include <cstdint>

#include "core/json_diff.h"
#include "tests/fuzz/fuzz_support.h"
#include "train/checkpoint.h"
#include "train/data_loader.h"
#include "train/loss_scaler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bertforge::Json;
  static bertforge::fuzz::FuzzInputFile input("trainer_state.json");
  input.write(data, size);
  absl::StatusOr<Json> state = bertforge::read_trainer_state(input.directory());
  if (bertforge::fuzz::refused(state.status())) return 0;
  if (const Json* loader = state->get("loader")) {
    absl::StatusOr<bertforge::LoaderPosition> position = bertforge::LoaderPosition::from_json(*loader);
    if (!bertforge::fuzz::refused(position.status())) {
      absl::StatusOr<bertforge::LoaderPosition> again = bertforge::LoaderPosition::from_json(position->to_json());
      FUZZ_CHECK(again.ok() && again->to_json() == position->to_json());
    }
  }
  if (const Json* loss_scale = state->get("loss_scale")) {
    bertforge::LossScaleConfig dynamic;
    dynamic.mode = bertforge::LossScaleConfig::Mode::kDynamic;
    bertforge::LossScaler scaler(dynamic);
    static_cast<void>(bertforge::fuzz::refused(scaler.restore(*loss_scale)));  // accepted or refused with a message
  }
  if (const Json* run = state->get("run")) {
    const Json reference = Json(Json::Object{{"model", Json(Json::Object{{"hidden_size", 128}})}, {"seed", "1"}});
    for (const bertforge::JsonDifference& difference : bertforge::json_differences(*run, reference)) {
      FUZZ_CHECK(!difference.before.empty() && !difference.after.empty());
    }
    bertforge::describe_differences(bertforge::json_differences(reference, *run));
  }
  return 0;
}
