// Starting a model from pretrained weights (models/pretrained_weights.h) for continued pretraining: a
// BertForMaskedLM file loads completely; a BertModel file loads the encoder and leaves the MLM head as the new
// model initialised it; a file of another size is refused with the config fields behind it, loading nothing.
#include "models/pretrained_weights.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/safetensors.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

class PretrainedWeights : public TempDirTest {
 protected:
  PretrainedWeights() : TempDirTest("pretrained_weights") {}

  std::string write(const std::string& name, const StateDict& tensors) {
    const absl::Status status = write_safetensors(path(name), tensors);
    BF_CHECK(status.ok(), status.ToString());
    return path(name);
  }
};

// name -> values of every parameter
std::map<std::string, std::vector<float>> values(const BertForMaskedLM& model) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, tensor] : model.named_parameters()) out[name] = tensor.to_float_vector();
  return out;
}

TEST_F(PretrainedWeights, AMaskedLmFileLoadsEveryParameter) {
  const BertForMaskedLM pretrained(small_bert_config(40, 16, 2, 32), /*init_seed=*/1);
  BertForMaskedLM model(small_bert_config(40, 16, 2, 32), /*init_seed=*/2);
  absl::StatusOr<PretrainedLoad> load = load_pretrained_weights(write("mlm.safetensors", pretrained.state_dict()),
                                                                model);
  ASSERT_TRUE(load.ok()) << load.status();
  EXPECT_TRUE(load->layout.mlm_head);
  EXPECT_TRUE(load->fresh.empty());
  EXPECT_EQ(values(model), values(pretrained));
}

TEST_F(PretrainedWeights, AnEncoderOnlyFileKeepsTheFreshMlmHead) {
  const BertForMaskedLM pretrained(small_bert_config(40, 16, 2, 32), /*init_seed=*/1);
  StateDict encoder_only;  // transformers' BertModel names: no "bert." prefix, no cls.*
  for (const auto& [name, tensor] : pretrained.state_dict()) {
    if (absl::StartsWith(name, "bert.")) encoder_only.emplace_back(name.substr(5), tensor);
  }
  BertForMaskedLM model(small_bert_config(40, 16, 2, 32), /*init_seed=*/2);
  const auto before = values(model), want = values(pretrained);
  absl::StatusOr<PretrainedLoad> load = load_pretrained_weights(write("encoder.safetensors", encoder_only), model);
  ASSERT_TRUE(load.ok()) << load.status();
  EXPECT_FALSE(load->layout.mlm_head);
  ASSERT_FALSE(load->fresh.empty());
  int head_parameters = 0, differing_from_pretrained = 0;  // the head's random weights differ between seeds
  for (const auto& [name, got] : values(model)) {
    if (absl::StartsWith(name, "cls.")) {
      ++head_parameters;
      EXPECT_EQ(got, before.at(name)) << name << " should keep the fresh initialisation";
      differing_from_pretrained += got != want.at(name);
    } else {
      EXPECT_EQ(got, want.at(name)) << name;
    }
  }
  EXPECT_EQ(head_parameters, static_cast<int>(load->fresh.size()));
  EXPECT_GT(differing_from_pretrained, 0);
}

TEST_F(PretrainedWeights, AnotherSizeIsRefusedNamingTheConfigFieldsAndLoadsNothing) {
  const BertForMaskedLM pretrained(small_bert_config(40, 16, 2, 32), /*init_seed=*/1);
  BertForMaskedLM model(small_bert_config(40, 24, 3, 32), /*init_seed=*/2);
  const auto before = values(model);
  absl::StatusOr<PretrainedLoad> load = load_pretrained_weights(write("mlm.safetensors", pretrained.state_dict()),
                                                                model);
  ASSERT_FALSE(load.ok());
  EXPECT_NE(load.status().message().find("does not fit the model: hidden_size 24 in the config, 16 in the "
                                         "checkpoint; intermediate_size 48 in the config, 32 in the checkpoint\n  details: "),
            absl::string_view::npos)
      << load.status().message();
  EXPECT_LT(load.status().message().size(), 1000u) << "the tensor list is cut short: " << load.status().message();
  EXPECT_EQ(values(model), before);
}

}  // namespace
}  // namespace bertforge
