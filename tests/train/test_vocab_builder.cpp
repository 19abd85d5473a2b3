// WordPiece vocabulary builder: the merge order on a corpus small enough to follow by hand, a ~2000-token
// vocabulary from a synthetic Zipf-distributed corpus (specials first, every character in both forms, few
// [UNK]s and real compression when the corpus is encoded with it), independence from insertion order,
// reading files in pieces, and the errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <string>
#include <vector>

#include "tests/support/test_support.h"
#include "train/tokenizer.h"
#include "train/vocab_builder.h"

namespace bertforge {
namespace {

using namespace test_support;
using Words = std::vector<std::string>;

const Words kSpecials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

// A corpus of `n_words` words: a lexicon of made-up words (prefix + two syllables + suffix, so that pieces
// recur across words) drawn with Zipf's law, in sentences with capitals, commas, full stops, numbers and a few
// accented words. Fixed by `seed`.
std::string synthetic_corpus(int n_words, uint32_t seed) {
  const Words prefixes = {"", "", "", "un", "re", "pre", "dis", "over"};
  const Words syllables = {"ka", "to", "mi", "ren", "sol", "va", "lin", "dor", "pe", "qui", "zan", "bro",
                           "ful", "gam", "hes", "jor", "nex", "tri", "wel", "yon", "cé", "fê", "ñu"};
  const Words suffixes = {"", "", "s", "ing", "ed", "ly", "ation", "ness", "er"};
  std::mt19937 rng(seed);
  const auto pick = [&](const Words& from) { return from[rng() % from.size()]; };
  Words lexicon(3000);
  for (std::string& word : lexicon) word = pick(prefixes) + pick(syllables) + pick(syllables) + pick(suffixes);

  // Zipf: rank r (from 0) has weight 1 / (r + 1).
  std::vector<double> cumulative(lexicon.size());
  double total = 0;
  for (size_t r = 0; r < lexicon.size(); ++r) cumulative[r] = total += 1.0 / (r + 1);
  std::string text;
  for (int i = 0, in_sentence = 0; i < n_words; ++i, ++in_sentence) {
    const double u = static_cast<double>(rng()) / rng.max() * total;
    std::string word = lexicon[std::lower_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin()];
    if (rng() % 50 == 0) word = std::to_string(rng() % 2000);
    if (in_sentence == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
    text += word;
    if (in_sentence >= 6 && rng() % 4 == 0) {
      text += ".\n";
      in_sentence = -1;
    } else {
      text += rng() % 10 == 0 ? ", " : " ";
    }
  }
  return text;
}

// ---- Merges on a corpus small enough to follow by hand ------------------------------------------------------

TEST(VocabBuilder, MergesTheMostFrequentPairFirst) {
  // Words: hug x10, pug x5, pun x12, bun x4, hugs x5. Pair counts: u+g 20, p+u 17, u+n 16, h+u 15, g+s 5, b+u 4.
  WordCounter words;
  for (int i = 0; i < 10; ++i) words.add_text("hug");
  for (int i = 0; i < 5; ++i) words.add_text("pug hugs");
  for (int i = 0; i < 12; ++i) words.add_text("pun");
  for (int i = 0; i < 4; ++i) words.add_text("bun");
  VocabBuilderOptions options;
  options.vocab_size = 5 + 14 + 3;  // specials, 7 characters in two forms, three merges
  absl::StatusOr<Words> vocab = build_wordpiece_vocab(words, options);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  // Characters by frequency: u 36, g 20, p 17, n 16, h 15, s 5, b 4. Merges: u+g (20) -> ##ug; then ##u+##n
  // (16) beats p+##u (12 left once pug took ##ug) -> ##un; then h+##ug (15) -> hug.
  Words want = kSpecials;
  for (const char* c : {"u", "g", "p", "n", "h", "s", "b"}) want.push_back(c);
  for (const char* c : {"##u", "##g", "##p", "##n", "##h", "##s", "##b"}) want.push_back(c);
  for (const char* merged : {"##ug", "##un", "hug"}) want.push_back(merged);
  EXPECT_EQ(*vocab, want);

  absl::StatusOr<WordPieceTokenizer> tokenizer = WordPieceTokenizer::from_tokens(*vocab, "built vocab");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->tokenize("hugs pun bug"), (Words{"hug", "##s", "p", "##un", "b", "##ug"}));
}

TEST(VocabBuilder, StopsWhenNoPairIsFrequentEnough) {
  WordCounter words;
  words.add_text("abc abc xyz");
  VocabBuilderOptions options;
  options.vocab_size = 100;
  absl::StatusOr<Words> vocab = build_wordpiece_vocab(words, options);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  // 5 specials, 6 characters in two forms, then a+##b (2) and ab+##c (2); the pairs of "xyz" occur once.
  EXPECT_EQ(vocab->size(), 5u + 12u + 2u);
  EXPECT_EQ(vocab->back(), "abc");
}

// ---- A realistic size ---------------------------------------------------------------------------------------

class VocabBuilderCorpus : public TempDirTest {
 protected:
  VocabBuilderCorpus() : TempDirTest("vocab_builder") {}
};

TEST_F(VocabBuilderCorpus, BuildsA2000TokenVocabularyThatCoversTheCorpus) {
  const std::string corpus = synthetic_corpus(40000, 7);
  WordCounter words;
  words.add_text(corpus);
  VocabBuilderOptions options;
  options.vocab_size = 2000;
  absl::StatusOr<Words> vocab = build_wordpiece_vocab(words, options);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  ASSERT_EQ(vocab->size(), 2000u);
  EXPECT_TRUE(std::equal(kSpecials.begin(), kSpecials.end(), vocab->begin())) << "special tokens come first";

  const std::string file = path("vocab.txt");
  ASSERT_TRUE(write_vocab(*vocab, file).ok());
  absl::StatusOr<WordPieceTokenizer> tokenizer = WordPieceTokenizer::load(file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->unk_id(), 1);
  // Every character of the corpus, word-initial and as a continuation.
  for (const auto& [word, count] : words.counts()) {
    for (char32_t c : basic_tokenizer::decode_utf8(word)) {
      const std::string ch = basic_tokenizer::encode_utf8(std::u32string(1, c));
      EXPECT_GE(tokenizer->token_id(ch), 0) << ch;
      EXPECT_GE(tokenizer->token_id("##" + ch), 0) << ch;
    }
  }

  const std::vector<int32_t> ids = tokenizer->encode(corpus);
  const int64_t unknown = std::count(ids.begin(), ids.end(), tokenizer->unk_id());
  const size_t n_words = basic_tokenize(corpus).size();
  EXPECT_LT(unknown, static_cast<int64_t>(ids.size() / 100)) << "more than 1% [UNK]";
  // Merging pays: well under two pieces per word, though made-up words average ~6 characters.
  EXPECT_LT(static_cast<double>(ids.size()) / n_words, 1.5) << ids.size() << " pieces for " << n_words << " words";
}

TEST(VocabBuilder, DoesNotDependOnTheOrderOfTheText) {
  const std::string corpus = synthetic_corpus(6000, 11);
  const size_t middle = corpus.find('\n', corpus.size() / 2) + 1;
  WordCounter forward, backward;
  forward.add_text(corpus.substr(0, middle));
  forward.add_text(corpus.substr(middle));
  backward.add_text(corpus.substr(middle));
  backward.add_text(corpus.substr(0, middle));
  VocabBuilderOptions options;
  options.vocab_size = 500;
  absl::StatusOr<Words> a = build_wordpiece_vocab(forward, options);
  absl::StatusOr<Words> b = build_wordpiece_vocab(backward, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST_F(VocabBuilderCorpus, ReadsFilesInPiecesWithoutCuttingWords) {
  // Over 1 MiB, so the file is read in more than one piece; "é" and "中" make multi-byte characters likely
  // to straddle a piece boundary.
  std::string text;
  while (text.size() < (1u << 20) + 300000) text += "Café 中文 déjà-vu, naïve.\nAnother line without accents\n";
  text += "last line without a newline";
  const std::string file = path("corpus.txt");
  ASSERT_TRUE(write_file_atomic(file, text).ok());
  WordCounter from_file, from_text;
  ASSERT_TRUE(from_file.add_file(file).ok());
  from_text.add_text(text);
  EXPECT_EQ(from_file.counts(), from_text.counts());
  EXPECT_EQ(from_file.counts().at("newline"), 1);

  WordCounter missing;
  const absl::Status status = missing.add_file(path("missing.txt"));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("missing.txt"), absl::string_view::npos) << status;
}

TEST_F(VocabBuilderCorpus, RejectsImpossibleRequests) {
  WordCounter words;
  words.add_text("abcdef");
  VocabBuilderOptions options;
  options.vocab_size = 16;  // 5 specials + 2 x 6 characters = 17
  absl::StatusOr<Words> vocab = build_wordpiece_vocab(words, options);
  ASSERT_FALSE(vocab.ok());
  EXPECT_NE(vocab.status().message().find("17"), absl::string_view::npos) << vocab.status();
  options.max_alphabet = 5;  // the rarest character ("f", last in code point order among equals) is left out
  vocab = build_wordpiece_vocab(words, options);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  EXPECT_EQ(std::count(vocab->begin(), vocab->end(), "f"), 0);

  EXPECT_FALSE(build_wordpiece_vocab(WordCounter(), VocabBuilderOptions()).ok());
  options.min_pair_count = 0;
  EXPECT_FALSE(build_wordpiece_vocab(words, options).ok());

  const absl::Status status = write_vocab({"[PAD]", "two words"}, path("vocab.txt"));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("two words"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace bertforge
