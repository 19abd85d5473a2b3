// Fill-mask (train/fill_mask.h) on a hand-written vocabulary and small random models: the ids around [MASK], the
// probabilities against a reference computed from the parameters alone (the MLM head made to ignore the encoder),
// the order and tie-break of the top k, eval mode whatever mode the model was in, and the errors (no [MASK], a text
// too long, an encoder-only model, another vocabulary, a bad top_k). tests/e2e/bert_fill_mask.sh compares with
// transformers' BertForMaskedLM.
#include "train/fill_mask.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "models/bert.h"
#include "tests/support/small_tokenizer.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

constexpr int64_t kVocab = 14;

BertConfig config_with_dropout() {
  BertConfig config = small_bert_config(kVocab, 16, 2, 32);
  config.hidden_dropout_prob = 0.1f;
  config.attention_probs_dropout_prob = 0.1f;
  return config;
}

TEST(FillMaskTokenIds, KeepsEachMaskWhole) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  EXPECT_EQ(*fill_mask_token_ids(tokenizer, "The [MASK] sat on the mat!", 16),
            (std::vector<int32_t>{2, 5, 4, 7, 8, 5, 9, 13, 3}));
  // Masks next to each other and to a word, at the start and at the end.
  EXPECT_EQ(*fill_mask_token_ids(tokenizer, "[MASK][MASK]cats [MASK]", 16),
            (std::vector<int32_t>{2, 4, 4, 6, 12, 4, 3}));
  EXPECT_EQ(*fill_mask_token_ids(tokenizer, "[MASK]", 3), (std::vector<int32_t>{2, 4, 3}));
}

TEST(FillMaskTokenIds, RejectsNoMaskAndTooLongTexts) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  absl::StatusOr<std::vector<int32_t>> ids = fill_mask_token_ids(tokenizer, "the cat sat", 16);
  ASSERT_FALSE(ids.ok());
  EXPECT_TRUE(absl::StrContains(ids.status().message(), "no [MASK] in \"the cat sat\"")) << ids.status();
  // Lower case is ordinary text, as in Hugging Face's tokenizer.
  EXPECT_FALSE(fill_mask_token_ids(tokenizer, "the [mask] sat", 16).ok());
  ids = fill_mask_token_ids(tokenizer, "the cat sat on [MASK]", 6);
  ASSERT_FALSE(ids.ok());
  EXPECT_TRUE(absl::StrContains(ids.status().message(), "7 tokens with [CLS] and [SEP], over the limit of 6"))
      << ids.status();
}

// With the head's dense layer zeroed, gelu(0) = 0 and its LayerNorm returns its bias beta whatever the encoder
// computed, so the logits are beta . word_v + bias_v: a reference from the parameters alone.
TEST(FillMask, ProbabilitiesMatchAReferenceFromTheParameters) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  BertForMaskedLM model(config_with_dropout(), 5);
  const int64_t C = model.config().hidden_size;
  std::fill_n(model.transform_dense.weight.data<float>(), C * C, 0.0f);
  std::fill_n(model.transform_dense.bias.data<float>(), C, 0.0f);
  // The word embeddings are ~0.02: a large beta spreads the logits, so that the order has no near-ties.
  const std::vector<float> beta = random_values(C, -40, 40, 7), bias = random_values(kVocab, -2, 2, 8);
  std::copy(beta.begin(), beta.end(), model.transform_layer_norm.bias.data<float>());
  std::copy(bias.begin(), bias.end(), model.decoder_bias.data<float>());
  const float* word = model.embeddings.word_embeddings.weight.data<float>();
  std::vector<double> want(kVocab);
  double total = 0;
  for (int64_t v = 0; v < kVocab; ++v) {
    double logit = bias[v];
    for (int64_t c = 0; c < C; ++c) logit += static_cast<double>(beta[c]) * word[v * C + c];
    want[v] = std::exp(logit);
    total += want[v];
  }
  for (double& p : want) p /= total;
  std::vector<int32_t> want_order(kVocab);
  for (int32_t v = 0; v < kVocab; ++v) want_order[v] = v;
  std::sort(want_order.begin(), want_order.end(), [&](int32_t a, int32_t b) { return want[a] > want[b]; });
  for (int64_t i = 1; i < kVocab; ++i) {
    ASSERT_GT(want[want_order[i - 1]] - want[want_order[i]], 1e-4) << "a near-tie in the reference at rank " << i;
  }

  const std::vector<int32_t> ids = *fill_mask_token_ids(tokenizer, "the [MASK] sat on [MASK] mat", 32);
  absl::StatusOr<std::vector<FilledMask>> filled = fill_mask(model, tokenizer, ids, kVocab);
  ASSERT_TRUE(filled.ok()) << filled.status();
  ASSERT_EQ(filled->size(), 2u);
  EXPECT_EQ((*filled)[0].position, 2);
  EXPECT_EQ((*filled)[1].position, 5);
  for (const FilledMask& mask : *filled) {
    ASSERT_EQ(mask.top.size(), static_cast<size_t>(kVocab));
    for (int64_t i = 0; i < kVocab; ++i) {
      const MaskCandidate& c = mask.top[i];
      EXPECT_EQ(c.id, want_order[i]) << "rank " << i;
      EXPECT_EQ(c.token, tokenizer.token(c.id));
      EXPECT_NEAR(c.probability, want[c.id], 1e-6) << c.token;
    }
  }
}

// Equal logits (zero word embeddings and bias): every probability is 1/V and the lower ids come first.
TEST(FillMask, EqualProbabilitiesGoToTheLowerIds) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  BertForMaskedLM model(config_with_dropout(), 5);
  std::fill_n(model.embeddings.word_embeddings.weight.data<float>(), kVocab * model.config().hidden_size, 0.0f);
  std::fill_n(model.decoder_bias.data<float>(), kVocab, 0.0f);
  absl::StatusOr<std::vector<FilledMask>> filled =
      fill_mask(model, tokenizer, *fill_mask_token_ids(tokenizer, "a [MASK]", 8), 3);
  ASSERT_TRUE(filled.ok()) << filled.status();
  ASSERT_EQ(filled->size(), 1u);
  ASSERT_EQ((*filled)[0].top.size(), 3u);
  for (int32_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*filled)[0].top[i].id, i);
    EXPECT_NEAR((*filled)[0].top[i].probability, 1.0 / kVocab, 1e-12);
  }
}

// A model left in training mode (dropout 0.1) predicts as in eval mode, and keeps its mode.
TEST(FillMask, RunsInEvalModeAndRestoresTheMode) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  BertForMaskedLM model(config_with_dropout(), 9);
  const std::vector<int32_t> ids = *fill_mask_token_ids(tokenizer, "the cat [MASK] on the [MASK]!", 32);
  model.eval();
  const std::vector<FilledMask> want = *fill_mask(model, tokenizer, ids, 4);
  model.train();
  const std::vector<FilledMask> got = *fill_mask(model, tokenizer, ids, 4);
  EXPECT_TRUE(model.is_training());
  ASSERT_EQ(got.size(), want.size());
  for (size_t m = 0; m < got.size(); ++m) {
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(got[m].top[i].id, want[m].top[i].id);
      EXPECT_EQ(got[m].top[i].probability, want[m].top[i].probability);
    }
  }
}

TEST(FillMask, SaysWhyItCannotRun) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  const std::vector<int32_t> ids = *fill_mask_token_ids(tokenizer, "the [MASK]", 8);
  BertForMaskedLM encoder(small_bert_config(kVocab, 16, 2, 32), 1, BertHead::kEncoderOnly);
  absl::StatusOr<std::vector<FilledMask>> filled = fill_mask(encoder, tokenizer, ids, 5);
  ASSERT_FALSE(filled.ok());
  EXPECT_EQ(filled.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(filled.status().message(), "has no MLM head")) << filled.status();
  EXPECT_TRUE(absl::StrContains(filled.status().message(), "encoder-only")) << filled.status();

  BertForMaskedLM wider(small_bert_config(kVocab + 2, 16, 2, 32), 1);
  filled = fill_mask(wider, tokenizer, ids, 5);
  ASSERT_FALSE(filled.ok());
  EXPECT_TRUE(absl::StrContains(filled.status().message(), "not this model's vocab.txt")) << filled.status();

  BertForMaskedLM model(small_bert_config(kVocab, 16, 2, 4), 1);
  for (const int64_t k : {0, 15}) {
    filled = fill_mask(model, tokenizer, ids, k);
    ASSERT_FALSE(filled.ok());
    EXPECT_TRUE(absl::StrContains(filled.status().message(), "top_k must be in [1, 14]")) << filled.status();
  }
  filled = fill_mask(model, tokenizer, *fill_mask_token_ids(tokenizer, "the cat [MASK]", 8), 5);
  ASSERT_FALSE(filled.ok());
  EXPECT_TRUE(absl::StrContains(filled.status().message(), "max_position_embeddings 4")) << filled.status();
  filled = fill_mask(model, tokenizer, {2, 5, 3}, 5);
  ASSERT_FALSE(filled.ok());
  EXPECT_TRUE(absl::StrContains(filled.status().message(), "no [MASK]")) << filled.status();
}

}  // namespace
}  // namespace bertforge
