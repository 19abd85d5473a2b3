// BertConfig: presets, config.json round trips (ours and a Hugging Face file), the attention init, the
// clipped-softmax gamma, and validation errors that name the offending field.
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "models/bert_config.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

BertConfig parse(const std::string& text) {
  const absl::StatusOr<Json> json = Json::parse(text);
  BF_CHECK(json.ok(), json.status().ToString());
  const absl::StatusOr<BertConfig> config = BertConfig::from_json(*json);
  BF_CHECK(config.ok(), config.status().ToString());
  return *config;
}

// The error message of reading `text`, which must fail.
std::string parse_error(const std::string& text) {
  const absl::StatusOr<Json> json = Json::parse(text);
  BF_CHECK(json.ok(), json.status().ToString());
  const absl::StatusOr<BertConfig> config = BertConfig::from_json(*json);
  EXPECT_FALSE(config.ok()) << text;
  return config.ok() ? "" : std::string(config.status().message());
}

// The error message of validate() on a config that must be invalid.
std::string validation_error(const BertConfig& config) {
  const absl::Status status = config.validate();
  EXPECT_FALSE(status.ok());
  return std::string(status.message());
}

TEST(BertConfig, Presets) {
  const BertConfig base = BertConfig::base();
  EXPECT_EQ(base.vocab_size, 30522);
  EXPECT_EQ(base.head_size(), 64);
  EXPECT_EQ(base.max_position_embeddings, 512);
  EXPECT_FLOAT_EQ(base.layer_norm_eps, 1e-12f);
  EXPECT_EQ(BertConfig::mini().num_hidden_layers, 4);
  EXPECT_EQ(BertConfig::mini().intermediate_size, 1024);
  EXPECT_EQ(BertConfig::tiny().hidden_size, 128);
  EXPECT_EQ(BertConfig::preset("tiny")->num_attention_heads, 2);
  EXPECT_TRUE(absl::StrContains(BertConfig::preset("huge").status().message(), "base, mini or tiny"));
  for (const BertConfig& c : {base, BertConfig::mini(), BertConfig::tiny()}) EXPECT_TRUE(c.validate().ok());
}

TEST(BertConfig, JsonRoundTrip) {
  BertConfig c = BertConfig::mini();
  c.attention = AttentionVariant::kClippedSoftmax;
  c.clip_alpha = 3.2f;
  c.clip_zeta = 1.0f;
  c.head_dropout_prob = 0.1f;
  c.vocab_size = 1000;
  const Json json = c.to_json();
  EXPECT_EQ(json.get("hidden_size")->as_int64(), 256);
  EXPECT_EQ(json.get("hidden_dropout_prob")->as_number(), 0.1);  // written as 0.1, not 0.10000000149...
  EXPECT_EQ(json.get("bertforge_attention")->as_string(), "clipped_softmax");
  const BertConfig back = parse(json.dump());
  EXPECT_EQ(back.to_json(), json);
  EXPECT_EQ(back.attention, AttentionVariant::kClippedSoftmax);
  EXPECT_EQ(back.clip_alpha, 3.2f);
  EXPECT_EQ(back.hidden_dropout_prob, 0.1f);
  // Without alpha the field is absent and gamma is used.
  EXPECT_EQ(BertConfig::base().to_json().get("bertforge_clip_alpha"), nullptr);
}

// The attention projections' init: "bert" is the default and is not written (configs from before the field read
// the same), "reference" round-trips, anything else is an error.
TEST(BertConfig, AttentionInitRoundTrips) {
  EXPECT_EQ(BertConfig::base().attention_init, AttentionInit::kBert);
  EXPECT_EQ(BertConfig::base().to_json().get("bertforge_attention_init"), nullptr);
  EXPECT_EQ(parse(R"({"bertforge_attention_init": "bert"})").attention_init, AttentionInit::kBert);
  BertConfig c = BertConfig::tiny();
  c.attention_init = AttentionInit::kReference;
  const Json json = c.to_json();
  EXPECT_EQ(json.get("bertforge_attention_init")->as_string(), "reference");
  const BertConfig back = parse(json.dump());
  EXPECT_EQ(back.attention_init, AttentionInit::kReference);
  EXPECT_EQ(back.to_json(), json);
  EXPECT_EQ(*attention_init_from_name("reference"), AttentionInit::kReference);
  EXPECT_TRUE(absl::StrContains(parse_error(R"({"bertforge_attention_init": "xavier"})"),
                                "unknown attention init \"xavier\"; expected bert or reference"));
  EXPECT_TRUE(absl::StrContains(parse_error(R"({"bertforge_attention_init": 1})"), "must be a string"));
}

TEST(BertConfig, ClipGammaFromAlphaOrGamma) {
  BertConfig c;
  c.clip_gamma = -0.03f;
  EXPECT_EQ(c.clip_gamma_for(128), -0.03f);
  EXPECT_FLOAT_EQ(c.clip_gamma_for(128, 1.6f), -0.0125f);  // an override replaces gamma too
  c.clip_alpha = 3.2f;
  EXPECT_FLOAT_EQ(c.clip_gamma_for(128), -0.025f);
  EXPECT_FLOAT_EQ(c.clip_gamma_for(64), -0.05f);
  EXPECT_FLOAT_EQ(c.clip_gamma_for(64, 1.6f), -0.025f);
}

// bert-base-uncased's config.json, as transformers writes it: unknown fields are ignored.
TEST(BertConfig, ReadsHuggingFaceConfig) {
  const BertConfig c = parse(R"({
    "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
    "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522})");
  EXPECT_EQ(c.to_json(), BertConfig::base().to_json());
}

class BertConfigFiles : public TempDirTest {
 protected:
  BertConfigFiles() : TempDirTest("bert_config") {}
};

TEST_F(BertConfigFiles, SaveAndLoad) {
  BertConfig c = BertConfig::tiny();
  c.attention = AttentionVariant::kGated;
  c.gate_pi_init = 0.25f;
  ASSERT_TRUE(c.save(path("config.json")).ok());
  const absl::StatusOr<BertConfig> back = BertConfig::load(path("config.json"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->to_json(), c.to_json());
  EXPECT_FALSE(BertConfig::load(path("absent.json")).ok());
  ASSERT_TRUE(write_file_atomic(path("bad.json"), R"({"hidden_size": 100})").ok());
  const absl::Status status = BertConfig::load(path("bad.json")).status();
  EXPECT_TRUE(absl::StrContains(status.message(), path("bad.json"))) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "not a multiple of num_attention_heads")) << status;
}

TEST(BertConfig, RejectsBadJson) {
  EXPECT_TRUE(absl::StrContains(parse_error("[1]"), "expected a JSON object"));
  EXPECT_TRUE(absl::StrContains(parse_error(R"({"hidden_size": 76.5})"), "\"hidden_size\" must be an integer"));
  EXPECT_TRUE(absl::StrContains(parse_error(R"({"layer_norm_eps": "1e-12"})"), "must be a number"));
  EXPECT_TRUE(absl::StrContains(parse_error(R"({"hidden_act": "relu"})"), "exact erf GELU"));
  EXPECT_TRUE(absl::StrContains(parse_error(R"({"position_embedding_type": "relative_key"})"), "absolute"));
  EXPECT_TRUE(absl::StrContains(parse_error(R"({"bertforge_attention": "linear"})"), "unknown attention variant"));
  EXPECT_TRUE(absl::StrContains(parse_error(R"({"bertforge_clip_gama": -0.1})"), "unknown BERT config field"));
}

TEST(BertConfig, ValidationNamesEveryProblem) {
  BertConfig c;
  c.hidden_size = 100;
  c.num_hidden_layers = -1;
  c.hidden_dropout_prob = 1.0f;
  const std::string message = validation_error(c);
  EXPECT_TRUE(absl::StrContains(message, "hidden_size 100 is not a multiple of num_attention_heads 12")) << message;
  EXPECT_TRUE(absl::StrContains(message, "num_hidden_layers must be > 0, got -1")) << message;
  EXPECT_TRUE(absl::StrContains(message, "hidden_dropout_prob must be in [0, 1), got 1")) << message;
}

TEST(BertConfig, ValidatesTheAttentionVariants) {
  BertConfig c;
  c.clip_gamma = 0.5f;
  c.clip_zeta = 0.5f;
  EXPECT_TRUE(absl::StrContains(validation_error(c), "must be greater than bertforge_clip_gamma"));
  c = BertConfig();
  c.clip_alpha = -1.0f;
  EXPECT_TRUE(absl::StrContains(validation_error(c), "bertforge_clip_alpha must be finite and >= 0"));
  c = BertConfig();
  c.gate_pi_init = 1.0f;
  EXPECT_TRUE(absl::StrContains(validation_error(c), "bertforge_gate_pi_init must be in (0, 1)"));
  c = BertConfig();
  c.head_dropout_prob = -0.1f;
  EXPECT_TRUE(absl::StrContains(validation_error(c), "bertforge_head_dropout_prob"));
  c.head_dropout_prob = 0.1f;
  c.num_attention_heads = 96;
  c.hidden_size = 96 * 8;
  EXPECT_TRUE(absl::StrContains(validation_error(c), "head dropout supports at most 64 heads, got 96"));
  c = BertConfig();
  c.pad_token_id = 30522;
  EXPECT_TRUE(absl::StrContains(validation_error(c), "pad_token_id 30522 is outside the vocabulary"));
  c = BertConfig();
  c.layer_norm_eps = 0.0f;
  EXPECT_TRUE(absl::StrContains(validation_error(c), "layer_norm_eps must be > 0"));
}

}  // namespace
}  // namespace bertforge
