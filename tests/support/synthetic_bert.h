// tests/support/synthetic_bert.h — what the quantization tests share (header-only): a synthetic language as
// token shards and a small random BERT with activations of a few units.
//
//   kSyntheticVocab         45 ids: the five specials, then 40 regular tokens (ids 5..44)
//   write_synthetic_corpus  documents where each token determines the next (t' = 3t + 1 mod 40)
//   SyntheticBertTest       a fixture with train.zst (80 documents) and validation.zst (20), a 2-layer model of
//                           width 32 initialised with std 0.2 (in eval mode), and loaders over either file
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "models/bert.h"
#include "tests/support/test_support.h"
#include "train/data_loader.h"
#include "train/mlm_masking.h"
#include "train/token_shard.h"

namespace bertforge::test_support {

inline const MlmVocab kSyntheticVocab{/*size=*/45, /*pad=*/0, /*unk=*/1, /*cls=*/2, /*sep=*/3, /*mask=*/4};

// `documents` documents of 10 to 39 tokens; `salt` shifts their first tokens.
inline absl::Status write_synthetic_corpus(const std::string& path, int documents, uint32_t salt) {
  ShardWriter writer;
  BF_RETURN_IF_ERROR(writer.open(path, kSyntheticVocab.size));
  for (int d = 0; d < documents; ++d) {
    std::vector<uint32_t> ids;
    uint32_t t = (d * 7 + salt) % 40;
    for (int i = 0; i < 10 + (d * 13) % 30; ++i) {
      ids.push_back(5 + t);
      t = (3 * t + 1) % 40;
    }
    BF_RETURN_IF_ERROR(writer.add_document(ids));
  }
  return writer.close();
}

class SyntheticBertTest : public TempDirTest {
 protected:
  explicit SyntheticBertTest(const std::string& name) : TempDirTest(name) {}

  void SetUp() override {
    TempDirTest::SetUp();
    ASSERT_TRUE(write_synthetic_corpus(path("train.zst"), 80, 0).ok());
    ASSERT_TRUE(write_synthetic_corpus(path("validation.zst"), 20, 17).ok());
    model_ = std::make_unique<BertForMaskedLM>(config(), /*init_seed=*/5);
    model_->eval();
  }

  // Weights large enough for activations of a few units, and logits that react to them.
  static BertConfig config() {
    BertConfig c = small_bert_config(kSyntheticVocab.size, 32, 2, 16);
    c.initializer_range = 0.2f;
    return c;
  }

  // Batches of `batch_size` sequences of 16 tokens from `file` (a name under the test's directory).
  DataLoader loader(const std::string& file, bool shuffle, int64_t batch_size = 8) {
    DataLoaderOptions options;
    options.max_seq_len = 16;
    options.batch_size = batch_size;
    options.seed = 3;
    options.shuffle = shuffle;
    absl::StatusOr<DataLoader> l = DataLoader::open({path(file)}, kSyntheticVocab, options);
    BF_CHECK(l.ok(), l.status().ToString());
    return std::move(*l);
  }

  std::unique_ptr<BertForMaskedLM> model_;
};

}  // namespace bertforge::test_support
