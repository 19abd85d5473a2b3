// MLM masking: the 15% / 80-10-10 statistics, determinism from the Philox
// key (a sequence's mask does not depend on its row), special tokens never touched, labels, the at-least-one rule, and the
// documented stream layout.
#include "train/mlm_masking.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/philox.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

// bert-base-uncased's special ids, in a smaller vocabulary.
MlmVocab bert_vocab(int64_t size = 1000) {
  MlmVocab v;
  v.size = size;
  v.pad_id = 0;
  v.unk_id = 100;
  v.cls_id = 101;
  v.sep_id = 102;
  v.mask_id = 103;
  return v;
}

// B rows of length T: [CLS] regular tokens [SEP] [PAD]..., row b holding `lengths[b]` regular tokens.
Tensor make_ids(const MlmVocab& vocab, int64_t length, const std::vector<int64_t>& lengths) {
  const int64_t rows = static_cast<int64_t>(lengths.size());
  std::vector<int64_t> ids(rows * length, vocab.pad_id);
  for (int64_t b = 0; b < rows; ++b) {
    int64_t* row = ids.data() + b * length;
    row[0] = vocab.cls_id;
    for (int64_t t = 1; t <= lengths[b]; ++t) row[t] = vocab.regular_token((b * 31 + t * 7) % vocab.regular_count());
    row[lengths[b] + 1] = vocab.sep_id;
  }
  return Tensor::from_vector(ids, {rows, length});
}

std::vector<int64_t> as_vector(const Tensor& t) {
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

// Sequence indices 0 .. rows-1, one per row.
std::vector<int64_t> iota(int64_t rows) {
  std::vector<int64_t> indices(rows);
  for (int64_t b = 0; b < rows; ++b) indices[b] = b;
  return indices;
}

// |count - n p| <= 5 sigma for a binomial(n, p).
void expect_binomial(int64_t count, int64_t n, double p, const char* what) {
  const double sigma = std::sqrt(n * p * (1 - p));
  EXPECT_LE(std::fabs(count - n * p), 5 * sigma) << what << ": " << count << " of " << n << ", expected p " << p;
}

TEST(MlmVocab, ValidatesAndEnumeratesRegularTokens) {
  const MlmVocab vocab = bert_vocab(200);
  EXPECT_TRUE(vocab.validate().ok());
  MlmVocab duplicate = vocab;
  duplicate.mask_id = vocab.sep_id;
  EXPECT_FALSE(duplicate.validate().ok());
  MlmVocab outside = vocab;
  outside.unk_id = 200;
  EXPECT_FALSE(outside.validate().ok());
  MlmVocab tiny = vocab;
  tiny.size = 5;
  tiny.pad_id = 0, tiny.unk_id = 1, tiny.cls_id = 2, tiny.sep_id = 3, tiny.mask_id = 4;
  EXPECT_FALSE(tiny.validate().ok());  // no regular token left

  // regular_token enumerates exactly the non-special ids, in increasing order.
  std::vector<int64_t> regular;
  for (int64_t k = 0; k < vocab.regular_count(); ++k) regular.push_back(vocab.regular_token(k));
  std::vector<int64_t> expected;
  for (int64_t id = 0; id < vocab.size; ++id) {
    if (!vocab.is_special(id)) expected.push_back(id);
  }
  EXPECT_EQ(regular, expected);
}

TEST(MlmMasking, StatisticsMatch15PercentAnd80_10_10) {
  const MlmVocab vocab = bert_vocab();
  const int64_t rows = 1600, length = 128;  // 1600 * 126 = 201,600 maskable positions
  Tensor ids = make_ids(vocab, length, std::vector<int64_t>(rows, length - 2));
  const std::vector<int64_t> original = as_vector(ids);
  const Tensor labels = mask_batch(ids, vocab, MlmMaskingOptions{}, /*seed=*/1234, /*epoch=*/7, iota(rows));
  const std::vector<int64_t> masked = as_vector(ids), label = as_vector(labels);

  int64_t maskable = 0, chosen = 0, to_mask = 0, to_random = 0, kept = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    maskable += !vocab.is_special(original[i]);
    if (label[i] == kMlmIgnoreLabel) continue;
    ++chosen;
    if (masked[i] == vocab.mask_id) {
      ++to_mask;
    } else if (masked[i] == original[i]) {
      ++kept;
    } else {
      ++to_random;
      EXPECT_FALSE(vocab.is_special(masked[i])) << "random replacement drew special id " << masked[i];
    }
  }
  ASSERT_EQ(maskable, rows * (length - 2));
  expect_binomial(chosen, maskable, 0.15, "chosen");
  // A random draw equal to the original id counts as kept: 1 in regular_count.
  const double p_same = 1.0 / vocab.regular_count();
  expect_binomial(to_mask, chosen, 0.8, "[MASK]");
  expect_binomial(to_random, chosen, 0.1 * (1 - p_same), "random");
  expect_binomial(kept, chosen, 0.1 + 0.1 * p_same, "kept");
}

TEST(MlmMasking, LabelsHoldOriginalsAndSpecialsAreNeverTouched) {
  const MlmVocab vocab = bert_vocab();
  const int64_t length = 64;
  std::vector<int64_t> lengths;
  for (int64_t b = 0; b < 200; ++b) lengths.push_back(1 + b % (length - 2));
  Tensor ids = make_ids(vocab, length, lengths);
  // Sprinkle [UNK] among the regular tokens: it is special too.
  for (int64_t b = 0; b < 200; ++b) ids.data<int64_t>()[b * length + 1] = vocab.unk_id;
  const std::vector<int64_t> original = as_vector(ids);
  const Tensor labels = mask_batch(ids, vocab, MlmMaskingOptions{}, 5, 0, iota(200));
  const std::vector<int64_t> masked = as_vector(ids), label = as_vector(labels);
  for (size_t i = 0; i < original.size(); ++i) {
    if (vocab.is_special(original[i])) {
      EXPECT_EQ(masked[i], original[i]) << "special id changed at " << i;
      EXPECT_EQ(label[i], kMlmIgnoreLabel) << "special id labelled at " << i;
    } else if (label[i] == kMlmIgnoreLabel) {
      EXPECT_EQ(masked[i], original[i]) << "unchosen position changed at " << i;
    } else {
      EXPECT_EQ(label[i], original[i]) << "label at " << i;
    }
  }
}

TEST(MlmMasking, EverySequenceWithATokenGetsAtLeastOneMask) {
  const MlmVocab vocab = bert_vocab();
  // 500 rows of one or two regular tokens (0.85 and 0.72 chance of no draw under 15%), and a padding row.
  std::vector<int64_t> lengths;
  for (int b = 0; b < 500; ++b) lengths.push_back(1 + b % 2);
  Tensor ids = make_ids(vocab, 8, lengths);
  Tensor pad_row = Tensor::full({1, 8}, static_cast<float>(vocab.pad_id), DType::kI64);
  const Tensor labels = mask_batch(ids, vocab, MlmMaskingOptions{}, 99, 3, iota(500));
  for (int64_t b = 0; b < 500; ++b) {
    int chosen = 0;
    for (int64_t t = 0; t < 8; ++t) chosen += labels.data<int64_t>()[b * 8 + t] != kMlmIgnoreLabel;
    EXPECT_GE(chosen, 1) << "row " << b;
  }
  const Tensor pad_labels = mask_batch(pad_row, vocab, MlmMaskingOptions{}, 99, 3, {7});
  EXPECT_EQ(as_vector(pad_labels), std::vector<int64_t>(8, kMlmIgnoreLabel));
  EXPECT_EQ(as_vector(pad_row), std::vector<int64_t>(8, vocab.pad_id));
}

TEST(MlmMasking, DeterministicFromSeedEpochAndSequenceWhateverTheRow) {
  const MlmVocab vocab = bert_vocab();
  // Four identical rows: each is masked from its own sequence's stream all the same.
  std::vector<int64_t> rows;
  for (int b = 0; b < 4; ++b) {
    const std::vector<int64_t> row = as_vector(make_ids(vocab, 128, {126}));
    rows.insert(rows.end(), row.begin(), row.end());
  }
  const Tensor source = Tensor::from_vector(rows, {4, 128});
  auto run = [&](uint64_t seed, uint64_t epoch, const std::vector<int64_t>& sequences) {
    Tensor ids = source.clone();
    const Tensor labels = mask_batch(ids, vocab, MlmMaskingOptions{}, seed, epoch, sequences);
    return std::make_pair(as_vector(ids), as_vector(labels));
  };
  const auto base = run(1, 10, {0, 1, 2, 3});
  EXPECT_EQ(run(1, 10, {0, 1, 2, 3}), base);
  EXPECT_NE(run(1, 11, {0, 1, 2, 3}).second, base.second);
  EXPECT_NE(run(2, 10, {0, 1, 2, 3}).second, base.second);
  const std::vector<int64_t>& labels = base.second;
  EXPECT_FALSE(std::equal(labels.begin(), labels.begin() + 128, labels.begin() + 128)) << "rows 0 and 1 match";
  // The mask follows the sequence, not the row: sequences 3, 2, 1, 0 give base's rows in reverse order (what
  // makes a data-parallel split of a batch mask like the whole batch).
  const std::vector<int64_t> reversed = run(1, 10, {3, 2, 1, 0}).second;
  for (int64_t b = 0; b < 4; ++b) {
    EXPECT_TRUE(std::equal(labels.begin() + b * 128, labels.begin() + (b + 1) * 128, reversed.begin() + (3 - b) * 128))
        << "row " << b;
  }
}

TEST(MlmMasking, FollowsTheDocumentedStreamLayout) {
  const MlmVocab vocab = bert_vocab();
  const MlmMaskingOptions options;
  Tensor ids = make_ids(vocab, 128, {126, 126});
  const std::vector<int64_t> original = as_vector(ids);
  const uint64_t seed = 42, epoch = 3;
  const std::vector<int64_t> sequences = {17, 5};
  const Tensor labels = mask_batch(ids, vocab, options, seed, epoch, sequences);
  for (int64_t b = 0; b < 2; ++b) {
    const uint64_t offset = philox_stream_offset(kMlmStreamTag, epoch, sequences[b], 0);
    EXPECT_EQ(offset, mlm_stream_offset(epoch, sequences[b]));
    for (int64_t t = 1; t <= 126; ++t) {
      const Uint32x4 block = philox_block(seed, offset, t);
      const int64_t i = b * 128 + t;
      const bool chosen = philox_word_to_uniform(block.x[0]) < options.mask_prob;
      ASSERT_EQ(labels.data<int64_t>()[i] != kMlmIgnoreLabel, chosen) << "row " << b << " position " << t;
      if (!chosen) continue;
      const float u_action = philox_word_to_uniform(block.x[1]);
      int64_t want = original[i];
      if (u_action < 0.8f) {
        want = vocab.mask_id;
      } else if (u_action < 0.9f) {
        want = vocab.regular_token((static_cast<uint64_t>(block.x[2]) * vocab.regular_count()) >> 32);
      }
      EXPECT_EQ(ids.data<int64_t>()[i], want) << "row " << b << " position " << t;
    }
  }
}

TEST(MlmMasking, RejectsBadOptions) {
  MlmMaskingOptions options;
  EXPECT_TRUE(options.validate().ok());
  options.mask_token_prob = 0.95f;  // + 0.1 > 1
  EXPECT_FALSE(options.validate().ok());
  options = MlmMaskingOptions{};
  options.mask_prob = -0.1f;
  EXPECT_FALSE(options.validate().ok());
  Tensor ids = make_ids(bert_vocab(), 8, {3});
  EXPECT_THROW(mask_batch(ids, bert_vocab(), options, 0, 0, {0}), Error);
  Tensor wrong_dtype = Tensor::zeros({1, 8}, DType::kF32);
  EXPECT_THROW(mask_batch(wrong_dtype, bert_vocab(), MlmMaskingOptions{}, 0, 0, {0}), Error);
  EXPECT_THROW(mask_batch(ids, bert_vocab(), MlmMaskingOptions{}, 0, 0, {0, 1}), Error);  // one row, two indices
}

}  // namespace
}  // namespace bertforge
