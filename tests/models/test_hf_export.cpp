// Export to transformers: a bertforge checkpoint, made into a Hugging Face directory by tools/export_hf.py, loads
// in transformers' BertForMaskedLM and gives bertforge's logits.
//
// The test writes a run as bert_train leaves it (RUN/config.json, RUN/checkpoints/step-N/ through
// save_checkpoint) for a small random softmax BERT (weights far from the 0.02 initialisation, random biases and
// LayerNorm parameters, so every tensor matters), and bertforge's logits for a padded batch with two segments.
// tools/export_hf.py exports RUN, and tests/models/check_hf_export.py loads the result with transformers and
// compares. The Python with transformers is the project's venv, passed from tests/CMakeLists.txt as
// BERTFORGE_HF_PYTHON (scripts/setup.sh makes it); without it the comparison skips.
//
// Tolerance: 1e-5 absolute on every logit (|logits| up to 3; measured max error 1.5e-6 with transformers 4.49
// on torch 1.13: float32 summation orders). Exporting clipped softmax and gated attention, which transformers
// lacks, must fail with a message saying why (that part needs only python3).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "models/bert.h"
#include "models/bert_config.h"
#include "tests/support/test_support.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"

#ifndef BERTFORGE_HF_PYTHON
#error "BERTFORGE_HF_PYTHON must name the Python that has transformers (tests/CMakeLists.txt defines it)"
#endif

namespace bertforge {
namespace {

using namespace test_support;

constexpr double kLogitTolerance = 1e-5;
constexpr int kSkip = 77;  // check_hf_export.py: transformers cannot be imported

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` through the shell.
CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  BF_CHECK(pipe != nullptr, "cannot run ", command);
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string quoted(const std::string& s) { return absl::StrCat("'", s, "'"); }

BertConfig small_config(AttentionVariant attention = AttentionVariant::kSoftmax) {
  return test_support::small_bert_config(50, 32, 4, 16, attention);
}

// Every parameter random: weights uniform in [-0.3, 0.3), biases [-0.1, 0.1), LayerNorm weights [0.8, 1.2).
void randomise(BertForMaskedLM& model) {
  autograd::NoGradGuard no_grad;
  uint32_t seed = 1;
  for (auto& [name, p] : model.named_parameters()) {
    const bool layer_norm_weight = absl::EndsWith(name, "LayerNorm.weight");
    const bool bias = absl::EndsWith(name, "bias");
    const float lo = layer_norm_weight ? 0.8f : bias ? -0.1f : -0.3f;
    const float hi = layer_norm_weight ? 1.2f : bias ? 0.1f : 0.3f;
    p.copy_(random_tensor(p.shape(), lo, hi, seed++));
  }
}

class HfExport : public TempDirTest {
 protected:
  HfExport() : TempDirTest("hf_export") {}

  // RUN/config.json and RUN/checkpoints/step-00000007/, as bert_train writes them.
  void write_run(const BertForMaskedLM& model, const std::string& run_dir) {
    std::filesystem::create_directories(run_dir);
    ASSERT_TRUE(model.config().save(run_dir + "/config.json").ok());
    AdamWOptimizer optimizer(model.named_parameters(), OptimizerConfig());
    const absl::Status status = save_checkpoint(run_dir, 7, model.named_parameters(), optimizer, Json::object());
    ASSERT_TRUE(status.ok()) << status;
  }

  std::string export_command(const std::string& python, const std::string& run_dir, const std::string& out) {
    return absl::StrCat(python, " ", quoted(source_path("tools/export_hf.py")), " ", quoted(run_dir), " ",
                        quoted(out));
  }
};

TEST_F(HfExport, TransformersBertForMaskedLMGivesTheSameLogits) {
  const std::string python = BERTFORGE_HF_PYTHON;
  if (!std::filesystem::exists(python)) {
    GTEST_SKIP() << python << " does not exist: scripts/setup.sh makes the venv with transformers";
  }
  BertForMaskedLM model(small_config(), /*init_seed=*/3);
  randomise(model);
  write_run(model, path("run"));

  // Row 1 ends in two padding tokens; the second half of each row is segment 1.
  const Tensor ids = Tensor::from_vector<int64_t>({2, 17, 5, 44, 9, 31, 3, 12, 2, 8, 49, 20, 7, 3, 0, 0}, {2, 8});
  const Tensor types = Tensor::from_vector<int64_t>({0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, {2, 8});
  const Tensor mask = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {2, 8});
  model.eval();
  Tensor logits;
  {
    autograd::NoGradGuard no_grad;
    logits = model.forward(ids, types, mask).logits;
  }
  ASSERT_TRUE(write_safetensors(path("expected.safetensors"), {{"input_ids", ids},
                                                                {"token_type_ids", types},
                                                                {"attention_mask", mask},
                                                                {"logits", logits}})
                  .ok());
  {
    std::ofstream vocab(path("vocab.txt"));
    for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) vocab << special << "\n";
    for (int i = 5; i < 50; ++i) vocab << "w" << i << "\n";
  }

  const CommandResult exported =
      run(absl::StrCat(export_command(python, path("run"), path("hf")), " --vocab ", quoted(path("vocab.txt"))));
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  const CommandResult checked =
      run(absl::StrCat(python, " ", quoted(source_path("tests/models/check_hf_export.py")), " ", quoted(path("hf")),
                       " ", quoted(path("expected.safetensors")), " --tolerance ", kLogitTolerance));
  if (checked.exit_code == kSkip) GTEST_SKIP() << checked.output;
  std::printf("%s", checked.output.c_str());
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_TRUE(absl::StrContains(checked.output, "max |transformers - bertforge| logit")) << checked.output;
}

// transformers has softmax attention only: clipped softmax would load and silently compute something else, and
// gated attention has parameters it has no place for. Both are refused, with the reason.
TEST_F(HfExport, RefusesAttentionVariantsTransformersLacks) {
  for (AttentionVariant variant : {AttentionVariant::kClippedSoftmax, AttentionVariant::kGated}) {
    const std::string name = attention_variant_name(variant);
    const BertForMaskedLM model(small_config(variant), 1);
    write_run(model, path(name));
    const CommandResult result = run(export_command("python3", path(name), path(name + "_hf")));
    EXPECT_EQ(result.exit_code, 1) << name << ": " << result.output;
    EXPECT_TRUE(absl::StrContains(result.output, absl::StrCat("uses ", name, " attention"))) << result.output;
    EXPECT_TRUE(absl::StrContains(result.output, "only softmax attention")) << result.output;
    EXPECT_FALSE(std::filesystem::exists(path(name + "_hf/model.safetensors"))) << name;
  }
}

// A gated model's weights under a config that claims softmax: the gate tensors are refused by name.
TEST_F(HfExport, RefusesTensorsThatAreNotHuggingFaceBertParameters) {
  const BertForMaskedLM gated(small_config(AttentionVariant::kGated), 1);
  write_run(gated, path("run"));
  ASSERT_TRUE(small_config().save(path("run/config.json")).ok());  // now claims softmax
  const CommandResult result = run(export_command("python3", path("run"), path("hf")));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(absl::StrContains(result.output,
                                "not Hugging Face BERT parameters: bert.encoder.layer.0.attention.self.gate"))
      << result.output;
}

}  // namespace
}  // namespace bertforge
