// BertForMaskedLM against PyTorch, llm.c style: tests/models/make_bert_fixture.py writes a tiny BERT's weights,
// inputs, logits, loss, every gradient and 10 AdamW losses per attention variant (softmax, clipped softmax,
// gated) to tests/models/fixtures/bert_<variant>.safetensors; this test loads the weights, runs the same
// computation and compares. Also: a gradient check of gated attention, dropout keys, the probes, the
// attention init options, the clip alpha override, and checkpoints with Hugging Face's tied duplicates.
//
// Tolerances (float32 throughout, the fixture's logits are O(1), loss ~5):
//   logits      1e-5 absolute
//   loss        1e-6 relative
//   gradients   per tensor, max |ours - torch| <= 1e-4 * max |torch| + 1e-6 (summation orders differ, and
//               gradient entries that are sums cancelling to ~1e-8 make a per-element relative bound measure
//               noise). The floor is for attention.self.key.bias, whose gradient is exactly zero in exact
//               arithmetic (adding q.b_k to every score of a row leaves the softmax unchanged): both sides hold
//               rounding noise of ~5e-8 there.
//   AdamW       each of the 10 losses within 1e-5 absolute
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "models/bert.h"
#include "ops/adamw.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

// One fixture file, split into its parts.
struct BertFixture {
  BertConfig config;
  std::vector<std::string> parameter_names;  // named_parameters() order in PyTorch
  StateDict weights;
  SafetensorsFile file;

  const Tensor& get(const std::string& name) const {
    const Tensor* t = file.find(name);
    BF_CHECK(t != nullptr, "fixture has no tensor ", name);
    return *t;
  }
};

BertFixture load_fixture(const std::string& variant) {
  const std::string path = source_path("tests/models/fixtures/bert_" + variant + ".safetensors");
  absl::StatusOr<SafetensorsFile> file = read_safetensors(path);
  BF_CHECK(file.ok(), file.status().ToString());
  BertFixture fixture;
  fixture.file = std::move(*file);
  const absl::StatusOr<Json> metadata = Json::parse(fixture.file.metadata.at("bert_fixture"));
  BF_CHECK(metadata.ok() && metadata->get("config") != nullptr && metadata->get("parameter_names") != nullptr,
           path, ": bad bert_fixture metadata");
  const absl::StatusOr<BertConfig> config = BertConfig::from_json(*metadata->get("config"));
  BF_CHECK(config.ok(), config.status().ToString());
  fixture.config = *config;
  for (const Json& name : metadata->get("parameter_names")->as_array()) {
    fixture.parameter_names.push_back(name.as_string());
  }
  for (const auto& [name, tensor] : fixture.file.tensors) {
    const bool is_weight = !absl::StartsWith(name, "input.") && !absl::StartsWith(name, "output.") &&
                           !absl::StartsWith(name, "grad.") && !absl::StartsWith(name, "adamw.");
    if (is_weight) fixture.weights.emplace_back(name, tensor);
  }
  return fixture;
}

// The fixture's model: its config, its weights loaded strictly.
std::unique_ptr<BertForMaskedLM> fixture_model(const BertFixture& fixture) {
  auto model = std::make_unique<BertForMaskedLM>(fixture.config, /*init_seed=*/99);
  const absl::Status status = model->load_state_dict(fixture.weights);
  BF_CHECK(status.ok(), status.ToString());
  return model;
}

BertOutput run_fixture(const BertForMaskedLM& model, const BertFixture& fixture) {
  return model.forward(fixture.get("input.input_ids"), fixture.get("input.token_type_ids"),
                       fixture.get("input.attention_mask"), fixture.get("input.labels"));
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_float_vector(), y = b.to_float_vector();
  BF_CHECK(x.size() == y.size(), "max_abs_diff: sizes differ");
  float m = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

float max_abs(const Tensor& a) {
  float m = 0.0f;
  for (float v : a.to_float_vector()) m = std::max(m, std::fabs(v));
  return m;
}

class BertVsPyTorch : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(Variants, BertVsPyTorch, ::testing::Values("softmax", "clipped_softmax", "gated"));

TEST_P(BertVsPyTorch, ParameterNamesAndOrderMatchHuggingFace) {
  const BertFixture fixture = load_fixture(GetParam());
  const BertForMaskedLM model(fixture.config);
  std::vector<std::string> names;
  for (const auto& [name, parameter] : model.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, fixture.parameter_names);
}

// Every parameter's gradient against the fixture's, within 1e-4 of the largest |torch gradient| of the tensor;
// returns the worst error ratio and its parameter's name.
std::pair<float, std::string> expect_gradients_match(const BertForMaskedLM& model, const BertFixture& fixture) {
  float worst_ratio = 0.0f;
  std::string worst;
  for (const auto& [name, parameter] : model.named_parameters()) {
    const Tensor& want = fixture.get("grad." + name);
    EXPECT_TRUE(parameter.grad().defined()) << name;
    if (!parameter.grad().defined()) continue;
    const float error = max_abs_diff(parameter.grad(), want), scale = max_abs(want);
    EXPECT_LE(error, 1e-4f * scale + 1e-6f) << name << ": max |grad - torch| " << error << ", max |torch| " << scale;
    if (scale > 1e-6f && error / scale > worst_ratio) {
      worst_ratio = error / scale;
      worst = name;
    }
  }
  return {worst_ratio, worst};
}

TEST_P(BertVsPyTorch, LogitsLossAndGradientsMatch) {
  const BertFixture fixture = load_fixture(GetParam());
  const std::unique_ptr<BertForMaskedLM> model = fixture_model(fixture);
  const BertOutput out = run_fixture(*model, fixture);

  const Tensor& want_logits = fixture.get("output.logits");
  ASSERT_EQ(out.logits.shape(), want_logits.shape());
  const float logits_error = max_abs_diff(out.logits, want_logits);
  EXPECT_LE(logits_error, 1e-5f);
  const float loss = out.loss.item<float>(), want_loss = fixture.get("output.loss").item<float>();
  EXPECT_LE(std::fabs(loss - want_loss), 1e-6f * std::fabs(want_loss)) << loss << " vs " << want_loss;

  autograd::backward(out.loss);
  const auto [worst_ratio, worst] = expect_gradients_match(*model, fixture);
  std::printf("[%s] max |logits - torch| %.3g, |loss - torch| / loss %.3g, worst gradient error %.3g of max |grad| "
              "(%s)\n",
              GetParam().c_str(), logits_error, std::fabs(loss - want_loss) / want_loss, worst_ratio, worst.c_str());
}

// mlm_loss runs the head on the labelled rows only; loss and gradients are still PyTorch's full-logits ones.
TEST_P(BertVsPyTorch, MlmLossOnLabelledRowsMatches) {
  const BertFixture fixture = load_fixture(GetParam());
  const std::unique_ptr<BertForMaskedLM> model = fixture_model(fixture);
  const Tensor loss = model->mlm_loss(fixture.get("input.input_ids"), fixture.get("input.token_type_ids"),
                                      fixture.get("input.attention_mask"), fixture.get("input.labels"));
  const float want_loss = fixture.get("output.loss").item<float>();
  EXPECT_LE(std::fabs(loss.item<float>() - want_loss), 1e-6f * std::fabs(want_loss));
  autograd::backward(loss);
  expect_gradients_match(*model, fixture);
}

TEST(Bert, MlmLossWithoutLabelledPositionsIsZero) {
  BertConfig config = BertConfig::tiny();
  config.vocab_size = 50;
  const BertForMaskedLM model(config, /*init_seed=*/3);
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 8, 9, 10}, {2, 3});
  const Tensor loss = model.mlm_loss(ids, {}, {}, Tensor::full({2, 3}, -100.0f, DType::kI64));
  EXPECT_EQ(loss.item<float>(), 0.0f);
  autograd::backward(loss);
  for (const auto& [name, parameter] : model.named_parameters()) {
    if (!parameter.grad().defined()) continue;
    EXPECT_EQ(max_abs(parameter.grad()), 0.0f) << name;
  }
}

// 10 steps of AdamW as in the fixture: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01 except on
// biases and LayerNorm parameters. The loss of each step is computed before its update.
TEST_P(BertVsPyTorch, AdamWLossesMatch) {
  const BertFixture fixture = load_fixture(GetParam());
  const std::unique_ptr<BertForMaskedLM> model = fixture_model(fixture);
  const std::vector<float> want = fixture.get("adamw.losses").to_float_vector();
  auto parameters = model->named_parameters();
  std::vector<Tensor> m, v;
  for (const auto& [name, p] : parameters) {
    m.push_back(Tensor::zeros_like(p));
    v.push_back(Tensor::zeros_like(p));
  }
  float worst = 0.0f;
  for (size_t step = 0; step < want.size(); ++step) {
    model->zero_grad();
    const BertOutput out = run_fixture(*model, fixture);
    autograd::backward(out.loss);
    const float loss = out.loss.item<float>();
    EXPECT_NEAR(loss, want[step], 1e-5f) << "step " << step;
    worst = std::max(worst, std::fabs(loss - want[step]));
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < parameters.size(); ++i) {
      const std::string& name = parameters[i].first;
      AdamWConfig config;
      config.lr = 1e-3f;
      config.weight_decay = absl::EndsWith(name, "bias") || absl::StrContains(name, "LayerNorm") ? 0.0f : 0.01f;
      adamw_step(parameters[i].second, parameters[i].second.grad(), m[i], v[i], config,
                 static_cast<int64_t>(step) + 1);
    }
  }
  std::printf("[%s] AdamW losses %.5f -> %.5f, max |loss - torch| %.3g\n", GetParam().c_str(), want.front(),
              want.back(), worst);
}

// ---- Gated attention: gradient check of the whole block on a tiny shape -----------------------------------

TEST(GatedAttention, Gradcheck) {
  BertConfig config = BertConfig::tiny();
  config.hidden_size = 6;
  config.num_attention_heads = 2;
  config.attention = AttentionVariant::kGated;
  config.gate_pi_init = 0.3f;
  BertSelfAttention attention(config, 0);
  attention.init_parameters(5);
  // Larger weights than BERT's 0.02, so every path carries a visible gradient.
  int seed = 40;
  for (auto& [name, p] : attention.named_parameters()) {
    autograd::NoGradGuard no_grad;
    p.copy_(random_tensor(p.shape(), -0.8f, 0.8f, seed++));
  }
  const int64_t B = 2, T = 3;
  Tensor x = random_param({B, T, config.hidden_size}, -1.0f, 1.0f, 7);
  Tensor attention_mask = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 0}, {B, T});
  const Tensor mask = additive_attention_mask(attention_mask);
  std::vector<Tensor> inputs = {x};
  for (const Tensor& p : attention.parameters()) inputs.push_back(p);
  expect_gradcheck([&](const std::vector<Tensor>& in) { return attention.forward(in[0], mask, ForwardContext()); },
                   inputs, "gated attention");
}

TEST(GatedAttention, GateBiasStartsAtLogitOfPiInit) {
  BertConfig config = BertConfig::tiny();
  config.attention = AttentionVariant::kGated;
  config.gate_pi_init = 0.25f;
  const BertForMaskedLM model(config, 3);
  const Tensor& bias = model.layers[1]->attention_self.gate_bias;
  ASSERT_EQ(bias.shape(), (Shape{config.num_attention_heads}));
  for (float b : bias.to_float_vector()) EXPECT_FLOAT_EQ(b, std::log(0.25f / 0.75f));
  EXPECT_EQ(model.layers[1]->attention_self.gate_weight.shape(), (Shape{2, 64}));
}

// ---- Dropout, probes, checkpoints ---------------------------------------------------------------------------

BertConfig small_config() { return test_support::small_bert_config(50, 16, 2, 8); }

Tensor small_ids() { return Tensor::from_vector<int64_t>({5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, {2, 5}); }

TEST(Bert, DropoutMasksFollowTheContext) {
  BertConfig config = small_config();
  config.head_dropout_prob = 0.3f;
  const BertForMaskedLM model(config, 1);
  const Tensor ids = small_ids();
  const DropoutContext step1{7, 1, 0, 0}, step2{7, 2, 0, 0}, rank1{7, 1, 1, 0};
  const std::vector<float> a = model.forward(ids, {}, {}, {}, step1).logits.to_float_vector();
  EXPECT_EQ(a, model.forward(ids, {}, {}, {}, step1).logits.to_float_vector());
  EXPECT_NE(a, model.forward(ids, {}, {}, {}, step2).logits.to_float_vector());
  EXPECT_NE(a, model.forward(ids, {}, {}, {}, rank1).logits.to_float_vector());

  // Eval mode is dropout-free: the same as the model with every probability 0.
  BertConfig no_dropout = config;
  no_dropout.hidden_dropout_prob = no_dropout.attention_probs_dropout_prob = no_dropout.head_dropout_prob = 0.0f;
  const BertForMaskedLM reference(no_dropout, 1);
  BertForMaskedLM eval_model(config, 1);
  eval_model.eval();
  EXPECT_FALSE(eval_model.layers[0]->attention_self.query.is_training());
  EXPECT_EQ(eval_model.forward(ids, {}, {}, {}, step1).logits.to_float_vector(),
            reference.forward(ids, {}, {}, {}, step1).logits.to_float_vector());
}

TEST(Bert, ProbesSeeEveryLayer) {
  BertForMaskedLM model(small_config(), 2);
  std::vector<std::string> names;
  std::vector<Tensor> values;
  model.set_probe([&](const TapSite& site, const Tensor& value) {
    names.push_back(site.name());
    values.push_back(value.detach());
  });
  const Tensor ids = small_ids();
  const Tensor h = model.encode(ids, {}, {});
  const std::vector<std::string> want = {
      "layer.0.attention_probs", "layer.0.ffn_output", "layer.0.ffn_output_plus_residual", "layer.0.layer_output",
      "layer.1.attention_probs", "layer.1.ffn_output", "layer.1.ffn_output_plus_residual", "layer.1.layer_output"};
  EXPECT_EQ(names, want);
  EXPECT_EQ(values[0].shape(), (Shape{2, 2, 5, 5}));
  EXPECT_EQ(values[1].shape(), (Shape{2, 5, 16}));
  EXPECT_EQ(values.back().to_float_vector(), h.to_float_vector());
  model.set_probe(nullptr);
  names.clear();
  model.encode(ids, {}, {});
  EXPECT_TRUE(names.empty());
}

TEST(Bert, InitialisationFollowsHuggingFace) {
  const BertConfig config = BertConfig::mini();
  const BertForMaskedLM model(config, 11);
  const std::vector<float> word = model.embeddings.word_embeddings.weight.to_float_vector();
  for (int64_t c = 0; c < config.hidden_size; ++c) EXPECT_EQ(word[config.pad_token_id * config.hidden_size + c], 0.0f);
  double sum = 0, sum_sq = 0;
  const int64_t n = static_cast<int64_t>(word.size()) - config.hidden_size;
  for (size_t i = config.hidden_size; i < word.size(); ++i) {
    sum += word[i];
    sum_sq += word[i] * word[i];
  }
  EXPECT_NEAR(sum / n, 0.0, 1e-3);
  EXPECT_NEAR(std::sqrt(sum_sq / n), config.initializer_range, 1e-3);
  for (float b : model.layers[0]->intermediate_dense.bias.to_float_vector()) EXPECT_EQ(b, 0.0f);
  for (float w : model.transform_layer_norm.weight.to_float_vector()) EXPECT_EQ(w, 1.0f);
  // Distinct parameters draw distinct streams.
  EXPECT_NE(model.layers[0]->attention_self.query.weight.to_float_vector(),
            model.layers[0]->attention_self.key.weight.to_float_vector());
}

// sqrt(mean of v^2): the standard deviation of values of mean ~0.
double rms(const std::vector<float>& v) {
  double sum_sq = 0;
  for (float x : v) sum_sq += static_cast<double>(x) * x;
  return std::sqrt(sum_sq / static_cast<double>(v.size()));
}

// attention_init "reference": Q, K, V weights and biases (and the gate weight) are U(-1/sqrt(in), 1/sqrt(in)), of
// standard deviation 1/sqrt(3 in); every other Linear keeps normal(0, initializer_range) and a zero bias. The
// draw is deterministic in the seed.
TEST(Bert, ReferenceAttentionInitIsPyTorchsLinearInit) {
  BertConfig config = BertConfig::mini();
  config.attention = AttentionVariant::kGated;
  config.attention_init = AttentionInit::kReference;
  const BertForMaskedLM model(config, 11);
  const double in = static_cast<double>(config.hidden_size);
  for (const auto& layer : model.layers) {
    const BertSelfAttention& attention = layer->attention_self;
    for (const Linear* projection : {&attention.query, &attention.key, &attention.value}) {
      const std::vector<float> weight = projection->weight.to_float_vector(), bias = projection->bias.to_float_vector();
      for (const std::vector<float>* values : {&weight, &bias}) {
        const auto [low, high] = std::minmax_element(values->begin(), values->end());
        EXPECT_GE(*low, -1.0 / std::sqrt(in));
        EXPECT_LE(*high, 1.0 / std::sqrt(in));
      }
      EXPECT_NEAR(rms(weight), 1.0 / std::sqrt(3.0 * in), 0.02 / std::sqrt(3.0 * in));  // 65536 draws
      EXPECT_NEAR(rms(bias), 1.0 / std::sqrt(3.0 * in), 0.15 / std::sqrt(3.0 * in));    // 256 draws
    }
    const std::vector<float> gate = attention.gate_weight.to_float_vector();
    const double head_size = static_cast<double>(config.head_size());
    for (float g : gate) EXPECT_LE(std::fabs(g), 1.0 / std::sqrt(head_size));
    EXPECT_NEAR(rms(gate), 1.0 / std::sqrt(3.0 * head_size), 0.15 / std::sqrt(3.0 * head_size));
    for (float b : attention.gate_bias.to_float_vector()) EXPECT_FLOAT_EQ(b, 0.0f);  // logit(0.5)
    for (const Linear* other : {&layer->attention_output_dense, &layer->intermediate_dense, &layer->output_dense}) {
      EXPECT_NEAR(rms(other->weight.to_float_vector()), config.initializer_range, 1e-3);
      for (float b : other->bias.to_float_vector()) EXPECT_EQ(b, 0.0f);
    }
  }
  EXPECT_EQ(BertForMaskedLM(config, 11).layers[1]->attention_self.key.bias.to_float_vector(),
            model.layers[1]->attention_self.key.bias.to_float_vector());
  EXPECT_NE(BertForMaskedLM(config, 12).layers[1]->attention_self.key.bias.to_float_vector(),
            model.layers[1]->attention_self.key.bias.to_float_vector());
  // The default init ("bert") is unchanged: Q keeps normal(0, initializer_range) and a zero bias.
  config.attention_init = AttentionInit::kBert;
  const BertForMaskedLM bert_init(config, 11);
  EXPECT_NEAR(rms(bert_init.layers[0]->attention_self.query.weight.to_float_vector()), config.initializer_range, 1e-3);
  for (float b : bert_init.layers[0]->attention_self.query.bias.to_float_vector()) EXPECT_EQ(b, 0.0f);
}

// A clip alpha override (the trainer's warm-up) gives exactly the forward pass of a model whose config has that
// alpha, and clearing it returns to the config's alpha.
TEST(Bert, ClipAlphaOverrideActsAsTheConfigsAlpha) {
  BertConfig config = small_config();
  config.attention = AttentionVariant::kClippedSoftmax;
  config.clip_alpha = 1.0f;  // below T / (T - 1) = 1.25, T = 5: the near-uniform rows of a fresh model survive
  BertConfig other = config;
  other.clip_alpha = 0.5f;
  BertForMaskedLM model(config, 5);
  const BertForMaskedLM reference(other, 5);
  const Tensor ids = small_ids();
  const std::vector<float> at_config = model.forward(ids).logits.to_float_vector();
  model.set_clip_alpha(0.5f);
  const std::vector<float> overridden = model.forward(ids).logits.to_float_vector();
  EXPECT_EQ(overridden, reference.forward(ids).logits.to_float_vector());
  EXPECT_NE(overridden, at_config);
  model.set_clip_alpha(std::nullopt);
  EXPECT_EQ(model.forward(ids).logits.to_float_vector(), at_config);
}

// bert-base-uncased as transformers' BertForMaskedLM (no pooler): 109,514,298 parameters.
TEST(Bert, BaseHasHuggingFacesParameterCount) {
  EXPECT_EQ(BertForMaskedLM(BertConfig::base()).num_parameters(), 109514298);
}

class BertCheckpoint : public TempDirTest {
 protected:
  BertCheckpoint() : TempDirTest("bert_checkpoint") {}
};

TEST_F(BertCheckpoint, SaveAndLoadRoundTrip) {
  const BertForMaskedLM model(small_config(), 1);
  ASSERT_TRUE(save_safetensors(model, path("model.safetensors")).ok());
  BertForMaskedLM other(small_config(), 2);
  ASSERT_TRUE(load_safetensors(other, path("model.safetensors")).ok());
  const Tensor ids = small_ids();
  EXPECT_EQ(model.forward(ids).logits.to_float_vector(), other.forward(ids).logits.to_float_vector());
}

// A file as transformers may write it: with the tied decoder duplicated and the position_ids buffer, plus a
// pretraining checkpoint's pooler. Strict loading accepts the first two and rejects the pooler; non-strict
// loading reports it.
TEST_F(BertCheckpoint, LoadsHuggingFaceExtras) {
  const BertForMaskedLM model(small_config(), 1);
  StateDict state = model.state_dict();
  state.emplace_back("cls.predictions.decoder.weight", model.embeddings.word_embeddings.weight.detach());
  state.emplace_back("cls.predictions.decoder.bias", model.decoder_bias.detach());
  state.emplace_back("bert.embeddings.position_ids", Tensor::zeros({1, 8}, DType::kI64));
  ASSERT_TRUE(write_safetensors(path("hf.safetensors"), state).ok());
  BertForMaskedLM other(small_config(), 2);
  ASSERT_TRUE(load_safetensors(other, path("hf.safetensors")).ok());
  EXPECT_EQ(model.forward(small_ids()).logits.to_float_vector(), other.forward(small_ids()).logits.to_float_vector());

  state.emplace_back("bert.pooler.dense.weight", Tensor::zeros({16, 16}));
  ASSERT_TRUE(write_safetensors(path("pretraining.safetensors"), state).ok());
  const absl::Status strict = load_safetensors(other, path("pretraining.safetensors"));
  EXPECT_TRUE(absl::StrContains(strict.message(), "unexpected: bert.pooler.dense.weight")) << strict;
  LoadReport report;
  ASSERT_TRUE(load_safetensors(other, path("pretraining.safetensors"), LoadMode::kNonStrict, &report).ok());
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"bert.pooler.dense.weight"});
  EXPECT_TRUE(report.missing.empty());
}

TEST(Bert, RejectsBadInputs) {
  const BertForMaskedLM model(small_config(), 1);
  const Tensor ids = small_ids();
  EXPECT_THROW(model.forward(Tensor::zeros({2, 9}, DType::kI64)), Error);  // longer than max_position_embeddings
  EXPECT_THROW(model.forward(ids.to(DType::kI32)), Error);
  EXPECT_THROW(model.forward(ids, {}, Tensor::full({2, 5}, 2.0f)), Error);  // mask values must be 0 or 1
  EXPECT_THROW(model.forward(ids, {}, {}, Tensor::zeros({2, 4}, DType::kI64)), Error);
  BertConfig bad = small_config();
  bad.num_attention_heads = 3;
  EXPECT_THROW(BertForMaskedLM{bad}, Error);
}

}  // namespace
}  // namespace bertforge
