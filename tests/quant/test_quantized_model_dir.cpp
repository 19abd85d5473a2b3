// quant/quantized_model_dir.h: which --out directories bert_quant accepts before doing any work (new, empty, its
// own previous output; not a .safetensors path, a file, an unwritable place, or another model's directory without
// --overwrite), and that staged files reach the directory only on publish (replacing bert_quant's own files,
// leaving the others), with the staging directory gone either way.
#include "quant/quantized_model_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "core/file_io.h"
#include "core/safetensors.h"
#include "quant/quantized_checkpoint.h"
#include "quant/quantized_model.h"
#include "tests/support/test_support.h"

namespace bertforge::quant {
namespace {

namespace fs = std::filesystem;
using test_support::random_tensor;
using test_support::TempDirTest;

class QuantizedModelDir : public TempDirTest {
 protected:
  QuantizedModelDir() : TempDirTest("quantized_model_dir") {}

  void write(const std::string& name, const std::string& text) {
    fs::create_directories(fs::path(path(name)).parent_path());
    ASSERT_TRUE(write_file_atomic(path(name), text).ok());
  }
  std::string read(const std::string& name) {
    absl::StatusOr<std::string> text = read_file(path(name));
    return text.ok() ? *text : "<missing>";
  }
  // A quantized model.safetensors, as a previous bert_quant run leaves it.
  void write_quantized_weights(const std::string& name) {
    fs::create_directories(fs::path(path(name)).parent_path());
    QuantizedStateDict state;
    state.fp.emplace_back("bert.embeddings.LayerNorm.weight", random_tensor({4}, 1));
    state.quantized.emplace_back("bert.encoder.layer.0.output.dense.weight",
                                 quantize_weight(random_tensor({4, 4}, 2), int8_per_channel()));
    ASSERT_TRUE(save_quantized_checkpoint(path(name), state).ok());
  }
  std::set<std::string> entries(const std::string& name) {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(path(name))) names.insert(e.path().filename().string());
    return names;
  }
};

TEST_F(QuantizedModelDir, TheNameOfTheActivationsFileIsTheLoadersName) {
  EXPECT_EQ(activation_spec_path(kQuantizedWeightsFile), kQuantizedActivationsFile);
}

TEST_F(QuantizedModelDir, ASafetensorsPathIsRefusedWithTheDirectoryToGive) {
  absl::StatusOr<QuantizedModelDirCheck> c = check_quantized_model_dir(path("w8a8/model.safetensors"), false);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("--out is a directory now"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("give --out " + path("w8a8") + " instead"), std::string::npos) << c.status();
  EXPECT_FALSE(check_quantized_model_dir(path("w8a8/model.safetensors"), true).ok());  // not even with --overwrite
}

TEST_F(QuantizedModelDir, NewDirectoriesAreAcceptedWithoutCreatingAnything) {
  absl::StatusOr<QuantizedModelDirCheck> c = check_quantized_model_dir(path("a/b/c"), false);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->exists);
  EXPECT_FALSE(c->previous_output);
  EXPECT_TRUE(entries("").empty());  // neither a/ nor the writability probe is left
}

TEST_F(QuantizedModelDir, FilesAndUnwritablePlacesAreRefused) {
  write("file", "x");
  absl::StatusOr<QuantizedModelDirCheck> c = check_quantized_model_dir(path("file"), true);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("exists and is not a directory"), std::string::npos) << c.status();
  c = check_quantized_model_dir(path("file/sub/dir"), true);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(path("file") + " is not a directory"), std::string::npos) << c.status();
  // /proc takes no new directories, even from root (for whom permission bits say yes).
  c = check_quantized_model_dir("/proc/bertforge_no_such_dir/out", true);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(c.status().message().find("cannot write in /proc"), std::string::npos) << c.status();
}

TEST_F(QuantizedModelDir, AnotherModelsDirectoryNeedsOverwrite) {
  write("hf/config.json", "{}");
  ASSERT_TRUE(write_safetensors(path("hf/model.safetensors"), {{"w", random_tensor({2, 2}, 3)}}).ok());
  write("hf/tokenizer.json", "{}");
  absl::StatusOr<QuantizedModelDirCheck> c = check_quantized_model_dir(path("hf"), false);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("holds no bert_quant output (it has config.json, model.safetensors, "
                                      "tokenizer.json; its model.safetensors is not a quantized model)"),
            std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("--overwrite"), std::string::npos);
  c = check_quantized_model_dir(path("hf"), true);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->exists);
  EXPECT_FALSE(c->previous_output);
  EXPECT_EQ(c->other_files, std::vector<std::string>{"tokenizer.json"});
  // bert_quant's own file names alone are not a bert_quant output either.
  write("half/config.json", "{}");
  EXPECT_FALSE(check_quantized_model_dir(path("half"), false).ok());
}

TEST_F(QuantizedModelDir, EmptyDirectoriesAndPreviousOutputsAreAccepted) {
  fs::create_directories(path("empty/.bert_quant-partial-1"));  // a crashed run's staging counts as nothing
  absl::StatusOr<QuantizedModelDirCheck> c = check_quantized_model_dir(path("empty"), false);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->exists);
  EXPECT_FALSE(c->previous_output);

  write_quantized_weights("previous/model.safetensors");
  write("previous/config.json", "{}");
  write("previous/notes.txt", "mine");
  c = check_quantized_model_dir(path("previous"), false);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->previous_output);
  EXPECT_EQ(c->other_files, std::vector<std::string>{"notes.txt"});

  write("interrupted/quant_report.json", "{}");  // a publish cut off after deleting the old weights
  write("interrupted/config.json", "{}");
  c = check_quantized_model_dir(path("interrupted"), false);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->previous_output);
}

TEST_F(QuantizedModelDir, PublishReplacesBertQuantsFilesAndLeavesTheOthers) {
  write_quantized_weights("out/model.safetensors");
  write("out/vocab.txt", "old vocab");  // not staged this time: removed
  write("out/config.json", "old config");
  write("out/notes.txt", "mine");
  {
    absl::StatusOr<StagedModelDir> staged = StagedModelDir::create(path("out"));
    ASSERT_TRUE(staged.ok()) << staged.status();
    write_quantized_weights(staged->path(kQuantizedWeightsFile).substr(dir_.size() + 1));
    ASSERT_TRUE(write_file_atomic(staged->path(kQuantizedConfigFile), "new config").ok());
    ASSERT_TRUE(write_file_atomic(staged->path(kQuantReportFile), "report").ok());
    EXPECT_EQ(read("out/config.json"), "old config");  // nothing moves before publish
    ASSERT_TRUE(staged->publish().ok());
  }
  EXPECT_EQ(entries("out"),
            (std::set<std::string>{"model.safetensors", "config.json", "quant_report.json", "notes.txt"}));
  EXPECT_EQ(read("out/config.json"), "new config");
  EXPECT_EQ(read("out/quant_report.json"), "report");
  EXPECT_EQ(read("out/notes.txt"), "mine");
  EXPECT_TRUE(*is_quantized_checkpoint(path("out/model.safetensors")));
}

TEST_F(QuantizedModelDir, AnUnpublishedStagingLeavesTheDirectoryAsItWas) {
  write("out/config.json", "old config");
  {
    absl::StatusOr<StagedModelDir> staged = StagedModelDir::create(path("out"));
    ASSERT_TRUE(staged.ok()) << staged.status();
    ASSERT_TRUE(write_file_atomic(staged->path(kQuantizedConfigFile), "new config").ok());
    const absl::Status published = staged->publish();  // no weights staged: refused, nothing touched
    EXPECT_FALSE(published.ok());
    EXPECT_NE(published.message().find("no model.safetensors staged"), std::string::npos) << published;
  }  // destroyed unpublished
  EXPECT_EQ(entries("out"), std::set<std::string>{"config.json"});
  EXPECT_EQ(read("out/config.json"), "old config");

  absl::StatusOr<StagedModelDir> fresh = StagedModelDir::create(path("new/nested"));  // creates the directory
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(entries("new/nested").size(), 1u);  // its staging directory
  *fresh = std::move(*StagedModelDir::create(path("other")));  // moving in discards the old staging
  EXPECT_TRUE(entries("new/nested").empty());
}

TEST_F(QuantizedModelDir, CreateRemovesTheStagingOfDeadRunsOnly) {
  const std::string dead = ".bert_quant-partial-999999999";  // above Linux's pid_max
  const std::string alive = ".bert_quant-partial-" + std::to_string(getppid());
  fs::create_directories(path("out/" + dead));
  fs::create_directories(path("out/" + alive));
  absl::StatusOr<StagedModelDir> staged = StagedModelDir::create(path("out"));
  ASSERT_TRUE(staged.ok()) << staged.status();
  const std::set<std::string> names = entries("out");
  EXPECT_EQ(names.count(dead), 0u);
  EXPECT_EQ(names.count(alive), 1u);
  EXPECT_EQ(names.count(".bert_quant-partial-" + std::to_string(getpid())), 1u);
}

}  // namespace
}  // namespace bertforge::quant
