// Step checkpoints: round trip, `latest`, pruning, and rejection of damaged or mismatched ones.
#include "train/checkpoint.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/safetensors.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

namespace fs = std::filesystem;

NamedTensors make_params(float first_value) {
  Tensor w = Tensor::full({2, 3}, first_value);
  Tensor b = Tensor::full({3}, first_value + 1);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  return {{"layer.weight", w}, {"layer.bias", b}};
}

class Checkpoint : public test_support::TempDirTest {
 protected:
  Checkpoint() : TempDirTest("checkpoint") {}

  Json state(int64_t step) {
    Json s = Json::object();
    s.set("step", step);
    s.set("note", "hello");
    return s;
  }
};

TEST_F(Checkpoint, RoundTripRestoresWeightsOptimizerAndState) {
  NamedTensors params = make_params(1.5f);
  AdamWOptimizer optimizer(params, OptimizerConfig{});
  params[0].second.set_grad(Tensor::ones({2, 3}));
  params[1].second.set_grad(Tensor::ones({3}));
  optimizer.step(0.1f);
  ASSERT_TRUE(save_checkpoint(dir_, 1, params, optimizer, state(1)).ok());

  absl::StatusOr<std::string> latest = latest_checkpoint(dir_);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(fs::path(*latest).filename(), "step-00000001");

  NamedTensors fresh = make_params(0.0f);
  AdamWOptimizer fresh_optimizer(fresh, OptimizerConfig{});
  absl::StatusOr<Json> restored = load_checkpoint(*latest, fresh, fresh_optimizer);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->get("note")->as_string(), "hello");
  EXPECT_EQ(fresh_optimizer.steps_taken(), 1);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(fresh[i].second.to_float_vector(), params[i].second.to_float_vector()) << params[i].first;
  }
  // The weights file is a plain safetensors file in the "pt" format transformers expects.
  absl::StatusOr<SafetensorsFile> model = read_safetensors(*latest + "/model.safetensors");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->metadata.at("format"), "pt");
}

TEST_F(Checkpoint, KeepsOnlyTheNewestAndRemovesLeftoverTemporaries) {
  NamedTensors params = make_params(1.0f);
  AdamWOptimizer optimizer(params, OptimizerConfig{});
  fs::create_directories(dir_ + "/checkpoints/step-00000009.tmp-1");  // a crashed save
  for (int64_t step : {10, 20, 30}) ASSERT_TRUE(save_checkpoint(dir_, step, params, optimizer, state(step)).ok());
  EXPECT_FALSE(fs::exists(dir_ + "/checkpoints/step-00000010"));
  EXPECT_FALSE(fs::exists(dir_ + "/checkpoints/step-00000009.tmp-1"));
  EXPECT_TRUE(fs::exists(dir_ + "/checkpoints/step-00000020"));
  EXPECT_EQ(fs::path(*latest_checkpoint(dir_)).filename(), "step-00000030");
}

// A run started over in a directory where an older run reached higher steps: pruning must not delete the new
// checkpoint (the lowest step) that `latest` names.
TEST_F(Checkpoint, PruningNeverDeletesTheCheckpointLatestNames) {
  NamedTensors params = make_params(1.0f);
  AdamWOptimizer optimizer(params, OptimizerConfig{});
  for (int64_t step : {35, 40, 5}) ASSERT_TRUE(save_checkpoint(dir_, step, params, optimizer, state(step)).ok());
  absl::StatusOr<std::string> latest = latest_checkpoint(dir_);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(fs::path(*latest).filename(), "step-00000005");
  EXPECT_EQ(read_trainer_state(*latest)->get("step")->as_int64(), 5);
  EXPECT_TRUE(fs::exists(dir_ + "/checkpoints/step-00000040"));  // keep_last 2: latest and the newest other
  EXPECT_FALSE(fs::exists(dir_ + "/checkpoints/step-00000035"));
}

TEST_F(Checkpoint, RemoveCheckpointsTakesThemAllAway) {
  EXPECT_TRUE(remove_checkpoints(dir_).ok());  // nothing to remove is fine
  NamedTensors params = make_params(1.0f);
  AdamWOptimizer optimizer(params, OptimizerConfig{});
  for (int64_t step : {1, 2}) ASSERT_TRUE(save_checkpoint(dir_, step, params, optimizer, state(step)).ok());
  ASSERT_TRUE(write_file_atomic(dir_ + "/metrics.jsonl", "{}\n").ok());
  ASSERT_TRUE(remove_checkpoints(dir_).ok());
  EXPECT_EQ(latest_checkpoint(dir_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_ + "/checkpoints"));
  EXPECT_TRUE(fs::exists(dir_ + "/metrics.jsonl"));  // only the checkpoints go
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().find("checkpoints"), std::string::npos) << entry.path();
  }
}

// A process killed (SIGKILL, no chance to clean up) at any moment of a save leaves `latest` naming a complete,
// loadable checkpoint: a child saves checkpoints of a few megabytes in a loop and is killed after a different delay
// each round.
TEST_F(Checkpoint, AKillAtAnyMomentOfASaveLeavesALoadableLatest) {
  NamedTensors params = {{"big.weight", Tensor::full({512, 1024}, 0.5f)}};
  params[0].second.set_requires_grad(true);
  AdamWOptimizer optimizer(params, OptimizerConfig{});
  ASSERT_TRUE(save_checkpoint(dir_, 1, params, optimizer, state(1)).ok());
  for (int round = 0; round < 24; ++round) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int64_t step = 2;; ++step) {
        if (!save_checkpoint(dir_, step, params, optimizer, state(step)).ok()) _exit(3);
      }
    }
    usleep(1000 + 1250 * round);  // 1 ms to 29.75 ms: before, inside and between the file writes and renames
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the saving child failed on its own, status " << status;
    absl::StatusOr<std::string> latest = latest_checkpoint(dir_);
    ASSERT_TRUE(latest.ok()) << "round " << round << ": " << latest.status();
    NamedTensors loaded = {{"big.weight", Tensor::zeros({512, 1024})}};
    loaded[0].second.set_requires_grad(true);
    AdamWOptimizer loaded_optimizer(loaded, OptimizerConfig{});
    absl::StatusOr<Json> restored = load_checkpoint(*latest, loaded, loaded_optimizer);
    ASSERT_TRUE(restored.ok()) << "round " << round << ": " << restored.status();
    EXPECT_EQ(loaded[0].second.to_float_vector()[12345], 0.5f);
  }
}

// Saving the step `latest` already names again (a finished run started again saves its last step once more)
// replaces that directory without a moment where it is missing: a watcher polls it throughout 40 re-saves.
TEST_F(Checkpoint, ReSavingTheLatestStepNeverLeavesItMissing) {
  NamedTensors params = make_params(1.0f);
  AdamWOptimizer optimizer(params, OptimizerConfig{});
  ASSERT_TRUE(save_checkpoint(dir_, 7, params, optimizer, state(7)).ok());
  const std::string weights = dir_ + "/checkpoints/step-00000007/model.safetensors";
  std::atomic<bool> saving{true};
  std::atomic<int64_t> polls{0}, missing{0};
  std::thread watcher([&] {
    while (saving.load()) {
      missing += !fs::exists(weights);
      ++polls;
    }
  });
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(save_checkpoint(dir_, 7, params, optimizer, state(7)).ok());
  saving = false;
  watcher.join();
  EXPECT_EQ(missing.load(), 0) << "of " << polls.load() << " looks";
  EXPECT_GT(polls.load(), 40);
  EXPECT_EQ(fs::path(*latest_checkpoint(dir_)).filename(), "step-00000007");
}

TEST_F(Checkpoint, ErrorsAreClearAndLeaveTheModelUntouched) {
  EXPECT_EQ(latest_checkpoint(dir_).status().code(), absl::StatusCode::kNotFound);
  NamedTensors params = make_params(2.0f);
  AdamWOptimizer optimizer(params, OptimizerConfig{});
  ASSERT_TRUE(save_checkpoint(dir_, 5, params, optimizer, state(5)).ok());
  const std::string checkpoint = *latest_checkpoint(dir_);

  // A model with a different shape.
  Tensor wide = Tensor::zeros({2, 4});
  wide.set_requires_grad(true);
  NamedTensors other = {{"layer.weight", wide}, {"layer.bias", make_params(0.0f)[1].second}};
  AdamWOptimizer other_optimizer(other, OptimizerConfig{});
  absl::StatusOr<Json> loaded = load_checkpoint(checkpoint, other, other_optimizer);
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("layer.weight"), absl::string_view::npos) << loaded.status();
  EXPECT_EQ(wide.to_float_vector(), std::vector<float>(8, 0.0f));

  // A truncated weights file.
  const std::string model_path = checkpoint + "/model.safetensors";
  std::string bytes = *read_file(model_path);
  ASSERT_TRUE(write_file_atomic(model_path, bytes.substr(0, bytes.size() - 4)).ok());
  NamedTensors fresh = make_params(0.0f);
  AdamWOptimizer fresh_optimizer(fresh, OptimizerConfig{});
  loaded = load_checkpoint(checkpoint, fresh, fresh_optimizer);
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("model.safetensors"), absl::string_view::npos) << loaded.status();
  EXPECT_EQ(fresh_optimizer.steps_taken(), 0);

  // `latest` naming something that is not there.
  ASSERT_TRUE(write_file_atomic(dir_ + "/checkpoints/latest", "step-99999999\n").ok());
  EXPECT_EQ(latest_checkpoint(dir_).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace bertforge
