// Loading Hugging Face checkpoint layouts (models/hf_checkpoint.h) on small random models: BertModel files (no
// "bert." prefix, no MLM head, a pooler), bert.-prefixed encoder-only files and BertForMaskedLM files load into
// the model they describe and give the original model's numbers exactly; missing, unexpected and mixed names
// are errors that name the layout and the tensors; a loaded model is in eval mode (no dropout at inference); an
// encoder-only model evaluates its outlier metrics with the same probes as the full model. The real BertModel
// (all-MiniLM-L6-v2) is tests/models/test_minilm.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "models/bert.h"
#include "models/hf_checkpoint.h"
#include "tests/support/test_support.h"
#include "train/data_loader.h"
#include "train/evaluation.h"
#include "train/token_shard.h"

namespace bertforge {
namespace {

using namespace test_support;

BertConfig small_config() { return small_bert_config(40, 16, 2, 32); }

const Tensor kIds = Tensor::from_vector<int64_t>({2, 7, 9, 11, 3, 2, 30, 3, 0, 0}, {2, 5});
const Tensor kMask = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {2, 5});

std::vector<float> encoded(const BertForMaskedLM& model) {
  autograd::NoGradGuard no_grad;
  return model.encode(kIds, Tensor(), kMask).to_float_vector();
}

// The full model's tensors as transformers' BertModel saves them: no "bert." prefix, no cls.*, with the
// position_ids buffer and a pooler.
StateDict bert_model_layout(const BertForMaskedLM& model) {
  StateDict out{{"embeddings.position_ids", Tensor::zeros({1, 32}, DType::kI64)}};
  for (auto& [name, tensor] : model.state_dict()) {
    if (absl::StartsWith(name, "bert.")) out.emplace_back(name.substr(5), tensor);
  }
  out.emplace_back("pooler.dense.weight", Tensor::zeros({16, 16}));
  out.emplace_back("pooler.dense.bias", Tensor::zeros({16}));
  return out;
}

class HfCheckpoint : public TempDirTest {
 protected:
  HfCheckpoint() : TempDirTest("hf_checkpoint") {}

  std::string write(const std::string& name, const StateDict& tensors) {
    const absl::Status status = write_safetensors(path(name), tensors);
    BF_CHECK(status.ok(), status.ToString());
    return path(name);
  }
};

TEST(EncoderOnly, HasNoHeadParametersAndSharesTheEncoder) {
  const BertForMaskedLM full(small_config(), 4);
  const BertForMaskedLM encoder(small_config(), 4, BertHead::kEncoderOnly);
  EXPECT_TRUE(full.has_mlm_head());
  EXPECT_FALSE(encoder.has_mlm_head());
  std::vector<std::string> full_encoder_names;
  for (const auto& [name, p] : full.named_parameters()) {
    if (!absl::StartsWith(name, "cls.")) full_encoder_names.push_back(name);
  }
  std::vector<std::string> names;
  for (const auto& [name, p] : encoder.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, full_encoder_names);
  // Each parameter's initialisation depends on the seed and its name only, so the encoders are equal.
  EXPECT_EQ(encoded(encoder), encoded(full));
  try {
    encoder.forward(kIds);
    ADD_FAILURE() << "forward ran without an MLM head";
  } catch (const Error& e) {
    EXPECT_TRUE(absl::StrContains(e.what(), "MLM head")) << e.what();
  }
}

TEST_F(HfCheckpoint, LoadsTheBertModelLayout) {
  BertForMaskedLM original(small_config(), 1);
  original.eval();  // as load_hf_bert leaves the loaded one
  const std::string file = write("bert_model.safetensors", bert_model_layout(original));
  HfLoadReport report;
  absl::StatusOr<std::unique_ptr<BertForMaskedLM>> model = load_hf_bert(file, small_config(), &report);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_FALSE(report.layout.bert_prefix);
  EXPECT_FALSE(report.layout.mlm_head);
  EXPECT_FALSE((*model)->has_mlm_head());
  EXPECT_EQ(report.ignored, (std::vector<std::string>{"pooler.dense.weight", "pooler.dense.bias"}));
  EXPECT_EQ(encoded(**model), encoded(original));
}

TEST_F(HfCheckpoint, LoadsThePrefixedEncoderOnlyAndMaskedLMLayouts) {
  BertForMaskedLM original(small_config(), 1);
  original.eval();  // as load_hf_bert leaves the loaded ones
  StateDict prefixed;
  for (auto& [name, tensor] : original.state_dict()) {
    if (!absl::StartsWith(name, "cls.")) prefixed.emplace_back(name, tensor);
  }
  HfLoadReport report;
  absl::StatusOr<std::unique_ptr<BertForMaskedLM>> encoder =
      load_hf_bert(write("encoder.safetensors", prefixed), small_config(), &report);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_TRUE(report.layout.bert_prefix);
  EXPECT_FALSE((*encoder)->has_mlm_head());
  EXPECT_EQ(encoded(**encoder), encoded(original));

  ASSERT_TRUE(save_safetensors(original, path("mlm.safetensors")).ok());
  absl::StatusOr<std::unique_ptr<BertForMaskedLM>> mlm = load_hf_bert(path("mlm.safetensors"), small_config(), &report);
  ASSERT_TRUE(mlm.ok()) << mlm.status();
  EXPECT_TRUE(report.layout.bert_prefix && report.layout.mlm_head);
  EXPECT_TRUE(report.ignored.empty());
  autograd::NoGradGuard no_grad;
  EXPECT_EQ((*mlm)->forward(kIds, {}, kMask).logits.to_float_vector(),
            original.forward(kIds, {}, kMask).logits.to_float_vector());
}

// load_hf_bert is for inference: the model comes back in eval mode, so dropout (0.1 here, as in BERT's and MiniLM's
// configs) is off. Forward passes with different dropout keys must then agree with each other and with the
// original model in eval mode; the same model put in training mode must not (else this test could not fail).
TEST_F(HfCheckpoint, LoadsInEvalModeSoInferenceHasNoDropout) {
  BertConfig config = small_config();
  config.hidden_dropout_prob = 0.1f;
  config.attention_probs_dropout_prob = 0.1f;
  BertForMaskedLM original(config, 3);
  original.eval();
  ASSERT_TRUE(save_safetensors(original, path("dropout.safetensors")).ok());
  absl::StatusOr<std::unique_ptr<BertForMaskedLM>> loaded = load_hf_bert(path("dropout.safetensors"), config);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  BertForMaskedLM& model = **loaded;
  EXPECT_FALSE(model.is_training());

  autograd::NoGradGuard no_grad;
  const auto logits = [&](const BertForMaskedLM& m, uint64_t step) {
    DropoutContext dropout;
    dropout.seed = 11;
    dropout.step = step;
    return m.forward(kIds, {}, kMask, {}, dropout).logits.to_float_vector();
  };
  const std::vector<float> reference = logits(original, 0);
  EXPECT_EQ(logits(model, 1), reference);
  EXPECT_EQ(logits(model, 2), reference);

  model.train();
  const std::vector<float> dropped = logits(model, 1);
  ASSERT_EQ(dropped.size(), reference.size());
  float largest_change = 0;
  for (size_t i = 0; i < dropped.size(); ++i) {
    largest_change = std::max(largest_change, std::fabs(dropped[i] - reference[i]));
  }
  EXPECT_GT(largest_change, 1e-3f) << "dropout changed nothing in training mode";
  EXPECT_NE(logits(model, 2), dropped) << "other dropout keys should drop other units";
}

TEST_F(HfCheckpoint, NamesWhatIsMissingOrUnexpected) {
  const BertForMaskedLM original(small_config(), 1);
  StateDict tensors;
  for (auto& [name, tensor] : bert_model_layout(original)) {
    if (name != "encoder.layer.1.output.dense.weight") tensors.emplace_back(name, tensor);
  }
  tensors.emplace_back("encoder.layer.0.attention.self.gate.weight", Tensor::zeros({2, 8}));
  const absl::StatusOr<std::unique_ptr<BertForMaskedLM>> model =
      load_hf_bert(write("broken.safetensors", tensors), small_config());
  ASSERT_FALSE(model.ok());
  const std::string message(model.status().message());
  EXPECT_TRUE(absl::StrContains(message, "broken.safetensors (BertModel layout (encoder only")) << message;
  EXPECT_TRUE(absl::StrContains(message, "missing: bert.encoder.layer.1.output.dense.weight")) << message;
  EXPECT_TRUE(absl::StrContains(message, "unexpected: bert.encoder.layer.0.attention.self.gate.weight")) << message;

  BertConfig wider = small_config();
  wider.hidden_size = 32;
  const absl::StatusOr<std::unique_ptr<BertForMaskedLM>> wrong =
      load_hf_bert(write("ok.safetensors", bert_model_layout(original)), wider);
  ASSERT_FALSE(wrong.ok());
  // The config fields behind the shapes come first; the tensor list after them is cut short.
  EXPECT_TRUE(absl::StrContains(wrong.status().message(),
                                "does not fit the model: hidden_size 32 in the config, 16 in the checkpoint\n"
                                "  details: "))
      << wrong.status();
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), "bert.embeddings.word_embeddings.weight has shape [40, 16]"))
      << wrong.status();
  EXPECT_LT(wrong.status().message().size(), 1000u) << wrong.status();
}

TEST_F(HfCheckpoint, RejectsMixedOrForeignNames) {
  const BertForMaskedLM original(small_config(), 1);
  StateDict mixed = original.state_dict();
  mixed.emplace_back("encoder.layer.0.output.dense.bias", Tensor::zeros({16}));
  const auto a = load_hf_bert(write("mixed.safetensors", mixed), small_config());
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(absl::StrContains(a.status().message(), "mixes")) << a.status();
  const auto b = load_hf_bert(write("foreign.safetensors", {{"transformer.wte.weight", Tensor::zeros({4, 4})}}),
                              small_config());
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(absl::StrContains(b.status().message(), "holds no BERT encoder")) << b.status();
}

// evaluate() on an encoder-only model: no perplexity, and outlier metrics equal to those of the full model with
// the same encoder (the same probes over the same batches).
TEST_F(HfCheckpoint, EncoderOnlyEvaluationReusesTheProbes) {
  const MlmVocab vocab{/*size=*/40, /*pad=*/0, /*unk=*/1, /*cls=*/2, /*sep=*/3, /*mask=*/4};
  ShardWriter writer;
  ASSERT_TRUE(writer.open(path("valid.zst"), 40).ok());
  for (uint32_t d = 0; d < 12; ++d) {
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < 8 + (d * 5) % 20; ++i) ids.push_back(5 + (d + 3 * i) % 35);
    ASSERT_TRUE(writer.add_document(ids).ok());
  }
  ASSERT_TRUE(writer.close().ok());
  DataLoaderOptions options;
  options.max_seq_len = 16;
  options.batch_size = 4;
  options.shuffle = false;
  absl::StatusOr<DataLoader> loader = DataLoader::open({path("valid.zst")}, vocab, options);
  ASSERT_TRUE(loader.ok()) << loader.status();

  BertForMaskedLM full(small_config(), 6);
  BertForMaskedLM encoder(small_config(), 6, BertHead::kEncoderOnly);
  const EvalResult want = evaluate(full, *loader, 2);
  const EvalResult got = evaluate(encoder, *loader, 2);
  EXPECT_TRUE(want.has_perplexity);
  EXPECT_FALSE(got.has_perplexity);
  EXPECT_EQ(got.perplexity.batches, 2);
  EXPECT_EQ(got.outliers.samples, want.outliers.samples);
  EXPECT_GT(got.outliers.samples, 0);
  EXPECT_EQ(got.outliers.avg_kurtosis, want.outliers.avg_kurtosis);
  EXPECT_EQ(got.outliers.max_kurtosis, want.outliers.max_kurtosis);
  EXPECT_EQ(got.outliers.max_ffn_output_inf_norm, want.outliers.max_ffn_output_inf_norm);
  EXPECT_EQ(got.outliers.max_layer_output_inf_norm, want.outliers.max_layer_output_inf_norm);
  EXPECT_THROW(evaluate_perplexity(encoder, *loader, 2), Error);
}

}  // namespace
}  // namespace bertforge
