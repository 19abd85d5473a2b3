// Sentence embeddings (train/sentence_embedding.h) against sentence-transformers' all-MiniLM-L6-v2 pipeline
// (tokenize, truncate to 256, mean pooling over the attention mask, L2 normalisation), as reproduced with
// transformers by tests/train/make_embedding_fixture.py in tests/train/fixtures/minilm_sentence_embeddings.safetensors
// (13 sentences: punctuation, accents, uppercase, numbers, CJK, one truncated to 256 tokens).
//
// The token ids are checked with the committed bert_uncased_vocab.txt (byte for byte MiniLM's vocab.txt); the
// embeddings need the model itself, which scripts/fetch_minilm.sh puts in .cache/minilm/: without it that test
// skips. Tolerance 1e-5 absolute on unit vectors (measured: printed by the test).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "models/bert.h"
#include "models/bert_config.h"
#include "models/hf_checkpoint.h"
#include "tests/support/small_tokenizer.h"
#include "tests/support/test_support.h"
#include "train/sentence_embedding.h"
#include "train/tokenizer.h"

namespace bertforge {
namespace {

using namespace test_support;

constexpr double kEmbeddingTolerance = 1e-5;

std::string minilm_dir() { return source_path(".cache/minilm"); }

struct Fixture {
  SafetensorsFile file;
  std::vector<std::string> sentences;
  int64_t max_seq_len = 0;

  const Tensor& get(const char* name) const {
    const Tensor* t = file.find(name);
    BF_CHECK(t != nullptr, "embedding fixture has no ", name);
    return *t;
  }
};

Fixture fixture() {
  absl::StatusOr<SafetensorsFile> file =
      read_safetensors(source_path("tests/train/fixtures/minilm_sentence_embeddings.safetensors"));
  BF_CHECK(file.ok(), file.status().ToString());
  Fixture f{std::move(*file), {}, 0};
  const absl::StatusOr<Json> sentences = Json::parse(f.file.metadata.at("sentences"));
  BF_CHECK(sentences.ok(), sentences.status().ToString());
  for (const Json& s : sentences->as_array()) f.sentences.push_back(s.as_string());
  f.max_seq_len = std::stoll(f.file.metadata.at("max_seq_len"));
  return f;
}

WordPieceTokenizer uncased_tokenizer() {
  absl::StatusOr<WordPieceTokenizer> tokenizer =
      WordPieceTokenizer::load(source_path("tests/train/fixtures/bert_uncased_vocab.txt"));
  BF_CHECK(tokenizer.ok(), tokenizer.status().ToString());
  return *std::move(tokenizer);
}

TEST(SentenceEmbedding, TokenIdsMatchTransformers) {
  const Fixture f = fixture();
  const WordPieceTokenizer tokenizer = uncased_tokenizer();
  const Tensor& ids = f.get("input_ids");
  const Tensor& lengths = f.get("lengths");
  ASSERT_EQ(static_cast<int64_t>(f.sentences.size()), ids.size(0));
  bool truncated = false;
  for (int64_t i = 0; i < ids.size(0); ++i) {
    const int32_t* row = ids.data<int32_t>() + i * ids.size(1);
    const std::vector<int32_t> want(row, row + lengths.data<int32_t>()[i]);
    EXPECT_EQ(sentence_token_ids(tokenizer, f.sentences[i], f.max_seq_len), want) << "sentence " << i << ": "
                                                                                  << f.sentences[i];
    truncated |= static_cast<int64_t>(want.size()) == f.max_seq_len;
  }
  EXPECT_TRUE(truncated) << "the fixture should hold a sentence longer than max_seq_len";
}

TEST(SentenceEmbedding, TruncationKeepsClsAndSep) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  EXPECT_EQ(sentence_token_ids(tokenizer, "The cats sat!", 16), (std::vector<int32_t>{2, 5, 6, 12, 7, 13, 3}));
  EXPECT_EQ(sentence_token_ids(tokenizer, "The cats sat!", 4), (std::vector<int32_t>{2, 5, 6, 3}));
  EXPECT_EQ(sentence_token_ids(tokenizer, "The cats sat!", 2), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(sentence_token_ids(tokenizer, "", 8), (std::vector<int32_t>{2, 3}));
  EXPECT_THROW(sentence_token_ids(tokenizer, "the", 1), Error);
}

// Mean over the unmasked positions, then unit length; a zero mean stays zero (norm clamped at 1e-12).
TEST(SentenceEmbedding, MeanPoolAndNormalizeClosedForm) {
  const Tensor hidden = Tensor::from_vector<float>({3, 0, 1, 4, 100, -100,     // sentence 0: two tokens, padding
                                                    2, -2, -2, 2, 50, 50},     // sentence 1: a zero mean
                                                   {2, 3, 2});
  const Tensor mask = Tensor::from_vector<int64_t>({1, 1, 0, 1, 1, 0}, {2, 3});
  const std::vector<float> got = mean_pool_and_normalize(hidden, mask).to_float_vector();
  // Element by element: GCC 12 with AVX-512 (-march=native here) miscompiles a vector literal {r, r, 0, 0} into
  // {r, r, r, r}.
  ASSERT_EQ(got.size(), 4u);
  EXPECT_NEAR(got[0], 1 / std::sqrt(2.0), 1e-7);  // (2, 2) / |(2, 2)|
  EXPECT_NEAR(got[1], 1 / std::sqrt(2.0), 1e-7);
  EXPECT_EQ(got[2], 0.0f);
  EXPECT_EQ(got[3], 0.0f);
  EXPECT_THROW(mean_pool_and_normalize(hidden, Tensor::from_vector<int64_t>({1, 2, 0, 1, 1, 0}, {2, 3})), Error);
}

std::unique_ptr<BertForMaskedLM> small_model() {
  BertConfig config = small_bert_config(/*vocab=*/14, /*hidden=*/16, /*heads=*/2, /*max_positions=*/12);
  config.initializer_range = 0.5;  // sentences far apart, so a row landing in the wrong place shows
  return std::make_unique<BertForMaskedLM>(config, /*init_seed=*/5);
}

// Sorting by length for batching must not change any row: every sentence embedded alone gives the same.
TEST(SentenceEmbedding, BatchingKeepsTheInputOrder) {
  const std::unique_ptr<BertForMaskedLM> model = small_model();
  const WordPieceTokenizer tokenizer = small_tokenizer();
  const std::vector<std::string> sentences = {"the cat", "a dog sat on the mat!", "cats", "the dogs sat on a cat",
                                              "mat mat mat mat mat mat mat mat mat mat mat", "a"};
  SentenceEmbeddingOptions options;
  options.max_seq_len = 8;  // truncates the fifth
  options.batch_size = 4;
  std::vector<int64_t> progress;
  options.progress = [&](int64_t done) { progress.push_back(done); };
  const absl::StatusOr<Tensor> batched = embed_sentences(*model, tokenizer, sentences, options);
  ASSERT_TRUE(batched.ok()) << batched.status();
  ASSERT_EQ(batched->shape(), (Shape{6, 16}));
  EXPECT_EQ(progress, (std::vector<int64_t>{4, 6}));
  EXPECT_TRUE(model->is_training()) << "the model's mode must come back";

  options.progress = nullptr;
  for (size_t i = 0; i < sentences.size(); ++i) {
    const absl::StatusOr<Tensor> alone = embed_sentences(*model, tokenizer, {sentences[i]}, options);
    ASSERT_TRUE(alone.ok()) << alone.status();
    const std::vector<float> row = batched->slice(0, i, i + 1).contiguous().to_float_vector();
    const std::vector<float> want = alone->to_float_vector();
    expect_near_all(row, std::vector<double>(want.begin(), want.end()), 1e-6, "sentence " + sentences[i]);
    double norm = 0;
    for (float x : row) norm += double(x) * x;
    EXPECT_NEAR(norm, 1.0, 1e-6);
  }
}

TEST(SentenceEmbedding, RejectsOptionsTheModelCannotRun) {
  const std::unique_ptr<BertForMaskedLM> model = small_model();
  SentenceEmbeddingOptions options;
  options.max_seq_len = 13;  // max_position_embeddings is 12
  absl::StatusOr<Tensor> result = embed_sentences(*model, small_tokenizer(), {"the cat"}, options);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::StrContains(result.status().message(), "max_position_embeddings")) << result.status();
  options.max_seq_len = 8;
  options.batch_size = 0;
  EXPECT_FALSE(embed_sentences(*model, small_tokenizer(), {"the cat"}, options).ok());
  options.batch_size = 1;
  result = embed_sentences(*model, uncased_tokenizer(), {"the cat"}, options);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::StrContains(result.status().message(), "not this model's vocab.txt")) << result.status();
}

TEST(SentenceEmbedding, MiniLmMatchesSentenceTransformers) {
  if (!std::filesystem::exists(minilm_dir() + "/.complete")) {
    GTEST_SKIP() << "all-MiniLM-L6-v2 is not in " << minilm_dir() << ": run scripts/fetch_minilm.sh";
  }
  const absl::StatusOr<BertConfig> config = BertConfig::load(minilm_dir() + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::unique_ptr<BertForMaskedLM>> model = load_hf_bert(minilm_dir() + "/model.safetensors", *config);
  ASSERT_TRUE(model.ok()) << model.status();
  const absl::StatusOr<WordPieceTokenizer> tokenizer = WordPieceTokenizer::load(minilm_dir() + "/vocab.txt");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();

  const Fixture f = fixture();
  SentenceEmbeddingOptions options;
  options.max_seq_len = f.max_seq_len;
  options.batch_size = 4;  // several batches, sorted by length
  const absl::StatusOr<Tensor> got = embed_sentences(**model, *tokenizer, f.sentences, options);
  ASSERT_TRUE(got.ok()) << got.status();
  const Tensor& want = f.get("embeddings");
  ASSERT_EQ(got->shape(), want.shape());
  const std::vector<float> g = got->to_float_vector(), w = want.to_float_vector();
  double max_error = 0;
  for (size_t i = 0; i < g.size(); ++i) max_error = std::max(max_error, std::fabs(double(g[i]) - double(w[i])));
  std::printf("MiniLM sentence embeddings: max |bertforge - transformers| = %.3g over %zu values (tolerance %.0e)\n",
              max_error, g.size(), kEmbeddingTolerance);
  expect_near_all(g, std::vector<double>(w.begin(), w.end()), kEmbeddingTolerance, "sentence embeddings");
}

}  // namespace
}  // namespace bertforge
