// bert_prep's pipeline with --sentences: the sentence splitter on hand-written cases, its cuts falling between
// words (the sentences' tokens are the document's), shards holding one segment per sentence, a validation set
// that holds the same documents with or without sentences, and the loader's sequences with a [SEP] after every
// sentence.
#include "train/corpus_prep.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/file_io.h"
#include "tests/support/test_support.h"
#include "train/data_loader.h"
#include "train/prepared_data.h"
#include "train/token_shard.h"
#include "train/tokenizer.h"

namespace bertforge {
namespace {

using test_support::source_path;
using test_support::TempDirTest;

const char* const kVocab = "tests/train/fixtures/bert_uncased_vocab.txt";
const char* const kExcerpt = "tests/e2e/fixtures/kjv_excerpt.txt";

std::vector<std::string> sentences_of(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view sentence : split_sentences(text)) out.emplace_back(sentence);
  return out;
}

TEST(SplitSentences, EndsAtPeriodQuestionAndExclamationMarks) {
  using V = std::vector<std::string>;
  EXPECT_EQ(sentences_of("The cat sat. The dog ran."), (V{"The cat sat.", "The dog ran."}));
  EXPECT_EQ(sentences_of("Is it? Yes! Good."), (V{"Is it?", "Yes!", "Good."}));
  EXPECT_EQ(sentences_of("Wait?! Really..."), (V{"Wait?!", "Really..."}));
  EXPECT_EQ(sentences_of("One sentence only."), (V{"One sentence only."}));
}

TEST(SplitSentences, KeepsClosingQuotesAndBracketsWithTheSentence) {
  using V = std::vector<std::string>;
  EXPECT_EQ(sentences_of("He said \"Stop.\" Then he left."), (V{"He said \"Stop.\"", "Then he left."}));
  EXPECT_EQ(sentences_of("(See below.) Next 'one!' [Done?]"), (V{"(See below.)", "Next 'one!'", "[Done?]"}));
  // U+201C ... U+201D and U+2019 in UTF-8.
  EXPECT_EQ(sentences_of("She said \xE2\x80\x9Cgo.\xE2\x80\x9D Then \xE2\x80\x98yes.\xE2\x80\x99 End"),
            (V{"She said \xE2\x80\x9Cgo.\xE2\x80\x9D", "Then \xE2\x80\x98yes.\xE2\x80\x99", "End"}));
}

TEST(SplitSentences, NeedsWhitespaceAfterTheMark) {
  using V = std::vector<std::string>;
  EXPECT_EQ(sentences_of("Pi is 3.14 or so. e.g.this stays"), (V{"Pi is 3.14 or so.", "e.g.this stays"}));
  EXPECT_EQ(sentences_of("A \"quote.\"x b"), (V{"A \"quote.\"x b"}));
  // '\v' is not whitespace to the tokenizer (it drops it), so it is no break either.
  EXPECT_EQ(sentences_of("One.\vTwo."), (V{"One.\vTwo."}));
  EXPECT_EQ(sentences_of("One.\tTwo.\rThree."), (V{"One.", "Two.", "Three."}));
}

TEST(SplitSentences, TrailingTextSpacesLineBreaksAndNothing) {
  using V = std::vector<std::string>;
  EXPECT_EQ(sentences_of("no period at the end"), (V{"no period at the end"}));
  EXPECT_EQ(sentences_of("First one. and the rest"), (V{"First one.", "and the rest"}));
  EXPECT_EQ(sentences_of("  First one.    Second   one.   "), (V{"First one.", "Second   one."}));
  EXPECT_EQ(sentences_of("a line\nanother line. And more\n\nlast"),
            (V{"a line", "another line.", "And more", "last"}));
  EXPECT_EQ(sentences_of(""), V{});
  EXPECT_EQ(sentences_of(" \t\n  \n"), V{});
  EXPECT_EQ(sentences_of(". ! ?"), (V{".", "!", "?"}));
}

TEST(SplitSentences, ReturnsViewsIntoTheText) {
  const std::string text = "First. Second.";
  const std::vector<absl::string_view> sentences = split_sentences(text);
  ASSERT_EQ(sentences.size(), 2u);
  EXPECT_EQ(sentences[0].data(), text.data());
  EXPECT_EQ(sentences[1].data(), text.data() + 7);
}

// The tokens of a document's sentences, concatenated, are the document's tokens: the cuts fall between words.
TEST(SplitSentences, SentenceTokensConcatenateToTheDocumentTokens) {
  const absl::StatusOr<WordPieceTokenizer> tokenizer = WordPieceTokenizer::load(source_path(kVocab));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const absl::StatusOr<std::string> excerpt = read_file(source_path(kExcerpt));
  ASSERT_TRUE(excerpt.ok()) << excerpt.status();
  std::vector<std::string> documents = absl::StrSplit(*excerpt, "\n\n", absl::SkipWhitespace());
  documents.push_back("He said \"Stop!\" (Twice.) Then\t\xE2\x80\x9Cno?\xE2\x80\x9D  he\nleft. 3.14... e.g.x ok");
  for (const std::string& document : documents) {
    std::vector<int32_t> joined;
    for (absl::string_view sentence : split_sentences(document)) {
      const std::vector<int32_t> ids = tokenizer->encode(sentence);
      joined.insert(joined.end(), ids.begin(), ids.end());
    }
    EXPECT_EQ(joined, tokenizer->encode(document)) << document;
  }
}

class CorpusPrepTest : public TempDirTest {
 protected:
  CorpusPrepTest() : TempDirTest("corpus_prep") {}

  void SetUp() override {
    TempDirTest::SetUp();
    absl::StatusOr<WordPieceTokenizer> tokenizer = WordPieceTokenizer::load(source_path(kVocab));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_.emplace(std::move(*tokenizer));
  }

  // prepare_corpus of `input` into `out` with the fixture vocabulary.
  CorpusPrepReport prepare(const std::string& input, const std::string& out, DocumentSplit split, bool sentences,
                           double validation_fraction) {
    CorpusPrepConfig config;
    config.inputs = {input};
    config.split = split;
    config.vocab_path = source_path(kVocab);
    config.out_dir = out;
    config.validation_fraction = validation_fraction;
    config.seed = 3;
    config.sentences = sentences;
    const absl::StatusOr<CorpusPrepReport> report = prepare_corpus(config);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : CorpusPrepReport{};
  }

  // The one shard of out/<split>.
  TokenShard read_split(const std::string& out, const std::string& split) {
    const absl::StatusOr<TokenShard> shard = read_shard(out + "/" + split + "/shard-00000.zst");
    EXPECT_TRUE(shard.ok()) << shard.status();
    return shard.ok() ? *shard : TokenShard{};
  }

  std::vector<uint32_t> encode(absl::string_view text) const {
    const std::vector<int32_t> ids = tokenizer_->encode(text);
    return std::vector<uint32_t>(ids.begin(), ids.end());
  }

  std::optional<WordPieceTokenizer> tokenizer_;
};

// Segment d of `shard`.
std::vector<uint32_t> segment(const TokenShard& shard, uint64_t d) {
  return std::vector<uint32_t>(shard.tokens.begin() + static_cast<int64_t>(shard.document_offsets[d]),
                               shard.tokens.begin() + static_cast<int64_t>(shard.document_offsets[d + 1]));
}

TEST_F(CorpusPrepTest, WritesOneSegmentPerSentence) {
  const std::vector<std::string> documents = {"The cat sat. Did the dog run? It did!\nA line without a period",
                                              "One sentence only.", "Two here.  \"And a quote.\" "};
  ASSERT_TRUE(write_file_atomic(path("blank.txt"), absl::StrJoin(documents, "\n\n") + "\n").ok());
  const CorpusPrepReport report = prepare(path("blank.txt"), path("out"), DocumentSplit::kBlankLine, true, 0.0);
  EXPECT_EQ(report.train_documents, 3);
  EXPECT_EQ(report.train_segments, 4 + 1 + 2);
  EXPECT_EQ(report.validation_documents + report.validation_segments + report.validation_tokens, 0);

  const TokenShard shard = read_split(path("out"), "train");
  ASSERT_EQ(shard.document_count(), 7u);
  uint64_t d = 0;
  for (const std::string& document : documents) {
    std::vector<uint32_t> joined;
    for (absl::string_view sentence : split_sentences(document)) {
      const std::vector<uint32_t> ids = segment(shard, d++);
      EXPECT_EQ(ids, encode(sentence)) << sentence;
      joined.insert(joined.end(), ids.begin(), ids.end());
    }
    EXPECT_EQ(joined, encode(document)) << "the segment lengths of a document sum to its token count";
  }
  EXPECT_EQ(static_cast<int64_t>(shard.tokens.size()), report.train_tokens);

  // A line with several sentences gives several segments with --documents line too.
  ASSERT_TRUE(write_file_atomic(path("lines.txt"), "First. Second? Third!\nalone\n").ok());
  const CorpusPrepReport lines = prepare(path("lines.txt"), path("lines"), DocumentSplit::kLine, true, 0.0);
  EXPECT_EQ(lines.train_documents, 2);
  EXPECT_EQ(lines.train_segments, 4);
  EXPECT_EQ(read_split(path("lines"), "train").document_count(), 4u);
}

// The split is made per document, so --sentences moves no text between train and validation: both splits
// hold the same tokens in the same order, and every document boundary is still a segment boundary.
TEST_F(CorpusPrepTest, SentencesKeepTheValidationDocuments) {
  const std::string excerpt = source_path(kExcerpt);
  const CorpusPrepReport whole = prepare(excerpt, path("whole"), DocumentSplit::kBlankLine, false, 0.3);
  const CorpusPrepReport cut = prepare(excerpt, path("cut"), DocumentSplit::kBlankLine, true, 0.3);
  EXPECT_EQ(whole.train_segments, whole.train_documents);
  EXPECT_EQ(whole.validation_segments, whole.validation_documents);
  EXPECT_GT(whole.validation_documents, 0);
  EXPECT_EQ(cut.train_documents, whole.train_documents);
  EXPECT_EQ(cut.validation_documents, whole.validation_documents);
  EXPECT_GT(cut.train_segments, 2 * cut.train_documents);
  EXPECT_GT(cut.validation_segments, 2 * cut.validation_documents);
  EXPECT_EQ(cut.train_tokens, whole.train_tokens);
  EXPECT_EQ(cut.validation_tokens, whole.validation_tokens);
  for (const char* split : {"train", "validation"}) {
    const TokenShard documents = read_split(path("whole"), split), segments = read_split(path("cut"), split);
    EXPECT_EQ(segments.tokens, documents.tokens) << split;
    EXPECT_EQ(static_cast<int64_t>(segments.document_count()),
              std::string(split) == "train" ? cut.train_segments : cut.validation_segments);
    for (uint64_t offset : documents.document_offsets) {
      EXPECT_TRUE(std::binary_search(segments.document_offsets.begin(), segments.document_offsets.end(), offset))
          << split << ": a document boundary at token " << offset << " is inside a segment";
    }
  }
}

// The loader joins segments with [SEP]: its sequences of a --sentences corpus, [CLS] and the closing [SEP]
// taken off, are the sentences' tokens with a [SEP] after every sentence but the last.
TEST_F(CorpusPrepTest, LoaderPutsASepAfterEverySentence) {
  const std::vector<std::string> documents = {"The cat sat on the mat. Did the dog run? It did!",
                                              "A short one. \"Quoted words here.\" And then the end"};
  ASSERT_TRUE(write_file_atomic(path("text.txt"), absl::StrJoin(documents, "\n") + "\n").ok());
  const CorpusPrepReport report = prepare(path("text.txt"), path("out"), DocumentSplit::kLine, true, 0.0);
  ASSERT_EQ(report.train_segments, 6);

  std::vector<uint32_t> expected;
  for (const std::string& document : documents) {
    for (absl::string_view sentence : split_sentences(document)) {
      if (!expected.empty()) expected.push_back(static_cast<uint32_t>(tokenizer_->sep_id()));
      const std::vector<uint32_t> ids = encode(sentence);
      expected.insert(expected.end(), ids.begin(), ids.end());
    }
  }

  const absl::StatusOr<MlmVocab> vocab = load_prepared_vocab(path("out"), report.vocab_size);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  // Over several sequence lengths, some sentences end inside a chunk (the [SEP] between segments follows them
  // there) and some at a chunk's end (the closing [SEP] follows them, and the next sequence is [CLS] [SEP] ...).
  int64_t sequences_starting_with_sep = 0;
  for (int64_t max_seq_len = 5; max_seq_len <= 12; ++max_seq_len) {
    DataLoaderOptions options;
    options.max_seq_len = max_seq_len;
    options.batch_size = 2;
    options.shuffle = false;
    absl::StatusOr<DataLoader> loader = open_prepared_split(path("out"), "train", *vocab, options);
    ASSERT_TRUE(loader.ok()) << loader.status();
    std::vector<uint32_t> stream;
    for (int64_t b = 0; b < loader->batches_per_epoch(); ++b) {
      const MlmBatch batch = loader->next();
      for (int64_t row = 0; row < options.batch_size; ++row) {
        if (batch.sequence_indices[row] < 0) continue;
        // The sequence before masking: the label where a position was masked, else the input id.
        std::vector<int64_t> ids(max_seq_len);
        for (int64_t t = 0; t < max_seq_len; ++t) {
          const int64_t i = row * max_seq_len + t;
          const int64_t label = batch.labels.data<int64_t>()[i];
          ids[t] = label != kMlmIgnoreLabel ? label : batch.input_ids.data<int64_t>()[i];
        }
        const auto end = std::find(ids.begin(), ids.end(), vocab->pad_id);
        ASSERT_GE(end - ids.begin(), 3);
        EXPECT_EQ(ids.front(), vocab->cls_id);
        EXPECT_EQ(end[-1], vocab->sep_id);
        sequences_starting_with_sep += ids[1] == vocab->sep_id;
        stream.insert(stream.end(), ids.begin() + 1, end - 1);
      }
    }
    EXPECT_EQ(stream, expected) << "max_seq_len " << max_seq_len;
  }
  EXPECT_GT(sequences_starting_with_sep, 0);
}

}  // namespace
}  // namespace bertforge
