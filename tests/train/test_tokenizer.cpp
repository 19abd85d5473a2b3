// WordPiece tokenizer: each basic-tokenizer step on its own (UTF-8 decoding and the invalid-byte policy,
// cleaning, CJK spacing, lowercasing, accent stripping, punctuation splitting), greedy longest-match WordPiece
// with a small hand-made vocabulary (including the 100-character [UNK] rule), vocab.txt validation, and the
// reference: Hugging Face BertTokenizer's ids for ~200 varied texts on BERT's uncased vocabulary
// (tests/train/fixtures/tokenizer_reference.json, made by tests/train/make_tokenizer_fixture.py), which must
// come out exactly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "tests/support/test_support.h"
#include "train/tokenizer.h"

namespace bertforge {
namespace {

using namespace test_support;
using namespace basic_tokenizer;
using Words = std::vector<std::string>;

std::u32string u32(const std::string& utf8) { return decode_utf8(utf8); }

// ---- Basic tokenizer steps ----------------------------------------------------------------------------------

TEST(DecodeUtf8, DecodesEveryLength) {
  EXPECT_EQ(decode_utf8("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80"), (std::u32string{U'a', 0xE9, 0x4E2D, 0x1F600}));
  EXPECT_EQ(decode_utf8(std::string("a\0b", 3)), (std::u32string{U'a', 0, U'b'}));
  const std::u32string all = {0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF};
  EXPECT_EQ(decode_utf8(encode_utf8(all)), all);
}

// Invalid bytes become U+FFFD, one per byte, and decoding resumes at the next byte, so a valid character
// right after a broken sequence survives.
TEST(DecodeUtf8, InvalidBytesBecomeReplacementCharacters) {
  constexpr char32_t R = 0xFFFD;
  EXPECT_EQ(decode_utf8("a\xFF\x62"), (std::u32string{U'a', R, U'b'}));           // invalid lead byte
  EXPECT_EQ(decode_utf8("\x80\x61"), (std::u32string{R, U'a'}));                  // stray continuation
  EXPECT_EQ(decode_utf8("\xE4\xB8\x61"), (std::u32string{R, R, U'a'}));           // truncated before ASCII
  EXPECT_EQ(decode_utf8("\xE4\xB8"), (std::u32string{R, R}));                      // truncated at the end
  EXPECT_EQ(decode_utf8("\xF0\x9F\x98\xC3\xA9"), (std::u32string{R, R, R, 0xE9})); // truncated before é
  EXPECT_EQ(decode_utf8("\xC0\xAF"), (std::u32string{R, R}));                      // overlong "/"
  EXPECT_EQ(decode_utf8("\xE0\x80\xAF"), (std::u32string{R, R, R}));               // overlong, 3 bytes
  EXPECT_EQ(decode_utf8("\xED\xA0\x80"), (std::u32string{R, R, R}));               // a surrogate
  EXPECT_EQ(decode_utf8("\xF4\x90\x80\x80"), (std::u32string{R, R, R, R}));        // above U+10FFFF
}

// ... and since cleaning drops U+FFFD, invalid bytes vanish without splitting the word around them.
TEST(BasicTokenize, DropsInvalidBytes) {
  EXPECT_EQ(basic_tokenize("ab\x80\x63\x64 \xFF\xFE caf\xC3"), (Words{"abcd", "caf"}));  // \x63\x64 = "cd"
}

TEST(CleanText, DropsNulReplacementAndControls) {
  const std::u32string text = {U'a', 0, U'b', 0xFFFD, U'c', 0x07, 0x1B, 0x7F, 0x85,  // NUL, U+FFFD, Cc
                               0x200B, 0xAD, 0xFEFF, 0x200D,                           // Cf: zero width, soft hyphen
                               0xE000, 0x378, U'd'};                                   // Co, Cn
  EXPECT_EQ(clean_text(text), U"abcd");
}

TEST(CleanText, TurnsWhitespaceIntoSpaces) {
  const std::u32string text = {U'a', U'\t', U'b', U'\n', U'c', U'\r', U'd', 0xA0, U'e', 0x3000, U'f',
                               0x2009, U'g', 0x2028, U'h', 0x2029, U'i'};
  EXPECT_EQ(clean_text(text), U"a b c d e f g h i");
  // Vertical tab and form feed are controls that Unicode does not call space separators: dropped.
  EXPECT_EQ(clean_text(U"a\vb\fc"), U"abc");
}

TEST(SpaceCjk, SurroundsIdeographsWithSpaces) {
  EXPECT_EQ(space_cjk(u32("ab中文c")), u32("ab 中  文 c"));
  EXPECT_EQ(space_cjk(u32("\xEF\xA4\x80 𠀀")), u32(" \xEF\xA4\x80   𠀀 "));  // compatibility, extension B
  // Kana, Hangul and CJK punctuation are not ideographs.
  EXPECT_EQ(space_cjk(u32("ひらがなカタカナ한국어。")), u32("ひらがなカタカナ한국어。"));
  EXPECT_TRUE(is_cjk_ideograph(0x4E00));
  EXPECT_FALSE(is_cjk_ideograph(0x3042));
}

TEST(Lowercase, MapsEachCodePointAsPythonLower) {
  EXPECT_EQ(lowercase(u32("HÉLLO World 123!")), u32("héllo world 123!"));
  EXPECT_EQ(lowercase(u32("ΟΔΟΣ")), u32("οδοσ"));  // per code point: no final-sigma rule (as HF)
  EXPECT_EQ(lowercase(u32("İ")), u32("i\xCC\x87"));  // U+0130 -> i + combining dot above
  EXPECT_EQ(lowercase(u32("ĀĂĄ ǅ Ꭰ 𐐀 Ⅻ Ａ")), u32("āăą ǆ ꭰ 𐐨 ⅻ ａ"));
  EXPECT_EQ(lowercase(u32("ß ı ﬁ 中")), u32("ß ı ﬁ 中"));
}

TEST(StripAccents, DecomposesAndDropsNonspacingMarks) {
  EXPECT_EQ(strip_accents(u32("héllo")), u32("hello"));
  EXPECT_EQ(strip_accents(u32("e\xCC\x81")), u32("e"));        // already decomposed
  EXPECT_EQ(strip_accents(u32("ǖ ệ ṩ")), u32("u e s"));         // two levels of decomposition
  EXPECT_EQ(strip_accents(u32("ł ø đ ß")), u32("ł ø đ ß"));     // no canonical decomposition
  EXPECT_EQ(strip_accents(u32("ﬁ ² ａ")), u32("ﬁ ² ａ"));        // compatibility forms stay (NFD, not NFKD)
  EXPECT_EQ(strip_accents(u32("한")), (std::u32string{0x1112, 0x1161, 0x11AB}));  // Hangul: jamo
  EXPECT_EQ(strip_accents(u32("\xE1\xBF\xAF")), u32("`"));      // GREEK VARIA -> grave accent (U+0060)
  EXPECT_EQ(strip_accents(u32("\xE2\x84\xAB")), u32("A"));      // ANGSTROM SIGN -> A + ring
}

TEST(StripAccents, PutsCombiningMarksInCanonicalOrder) {
  // Two spacing musical marks (not dropped) out of order: augmentation dot (class 226) before stem (216).
  EXPECT_EQ(strip_accents(std::u32string{U'x', 0x1D16D, 0x1D165}), (std::u32string{U'x', 0x1D165, 0x1D16D}));
}

TEST(SplitPunctuation, MakesEachPunctuationMarkAWord) {
  const auto split = [](const std::string& word) {
    std::vector<std::string> pieces;
    for (const std::u32string& piece : split_punctuation(u32(word))) pieces.push_back(encode_utf8(piece));
    return pieces;
  };
  EXPECT_EQ(split("don't"), (Words{"don", "'", "t"}));
  EXPECT_EQ(split("a.b,,c"), (Words{"a", ".", "b", ",", ",", "c"}));
  EXPECT_EQ(split("$5+x^2`"), (Words{"$", "5", "+", "x", "^", "2", "`"}));  // ASCII symbols count
  EXPECT_EQ(split("«¿qué?»—"), (Words{"«", "¿", "qué", "?", "»", "—"}));     // category P*
  EXPECT_EQ(split("€5×2"), (Words{"€5×2"}));  // symbols (S*) outside ASCII do not split
  EXPECT_EQ(split(""), Words{});
  EXPECT_TRUE(is_punctuation(U'~'));
  EXPECT_FALSE(is_punctuation(U'a'));
}

TEST(BasicTokenize, RunsAllSteps) {
  EXPECT_EQ(basic_tokenize("Héllo, WORLD!"), (Words{"hello", ",", "world", "!"}));
  EXPECT_EQ(basic_tokenize("zero\u200Bwidth\ttab\abell"), (Words{"zerowidth", "tabbell"}));  // Cf and Cc vanish
  EXPECT_EQ(basic_tokenize("東京は日本"), (Words{"東", "京", "は", "日", "本"}));
  EXPECT_EQ(basic_tokenize("  \t\n "), Words{});
  EXPECT_EQ(basic_tokenize("\xCC\x81 alone"), (Words{"alone"}));  // a word of only marks vanishes
}

// ---- WordPiece on a small hand-made vocabulary --------------------------------------------------------------

WordPieceTokenizer hand_vocab() {
  absl::StatusOr<WordPieceTokenizer> tokenizer = WordPieceTokenizer::from_tokens(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "able", "!", "a", "##a",
       "##b", "##bc", "ж", "##ж"},
      "hand vocab");
  BF_CHECK(tokenizer.ok(), tokenizer.status().ToString());
  return *std::move(tokenizer);
}

TEST(WordPiece, TakesTheLongestMatchFirst) {
  const WordPieceTokenizer tokenizer = hand_vocab();
  EXPECT_EQ(tokenizer.tokenize("unaffable"), (Words{"un", "##aff", "##able"}));
  EXPECT_EQ(tokenizer.tokenize("Unaffable! affable"), (Words{"un", "##aff", "##able", "!", "aff", "##able"}));
  EXPECT_EQ(tokenizer.tokenize("abc ab"), (Words{"a", "##bc", "a", "##b"}));
  EXPECT_EQ(tokenizer.encode("unaffable!"), (std::vector<int32_t>{5, 6, 7, 10}));
}

TEST(WordPiece, UnmatchableWordIsOneUnk) {
  const WordPieceTokenizer tokenizer = hand_vocab();
  // "unaffablez": the pieces up to "z" match, but "##z" does not: the whole word is [UNK].
  EXPECT_EQ(tokenizer.tokenize("unaffablez able"), (Words{"[UNK]", "able"}));
  EXPECT_EQ(tokenizer.tokenize("xa"), (Words{"[UNK]"}));
}

TEST(WordPiece, WordsLongerThan100CharactersAreUnk) {
  const WordPieceTokenizer tokenizer = hand_vocab();
  EXPECT_EQ(tokenizer.encode(std::string(100, 'a')).size(), 100u);
  EXPECT_EQ(tokenizer.tokenize(std::string(101, 'a')), (Words{"[UNK]"}));
  // Characters count, not bytes: 100 "ж" (200 bytes) still get their pieces.
  std::string zhe100;
  for (int i = 0; i < 100; ++i) zhe100 += "ж";
  EXPECT_EQ(tokenizer.encode(zhe100).size(), 100u);
  EXPECT_EQ(tokenizer.tokenize(zhe100 + "ж"), (Words{"[UNK]"}));
}

TEST(WordPiece, VocabularyLookups) {
  const WordPieceTokenizer tokenizer = hand_vocab();
  EXPECT_EQ(tokenizer.vocab_size(), 17);
  EXPECT_EQ(tokenizer.pad_id(), 0);
  EXPECT_EQ(tokenizer.unk_id(), 1);
  EXPECT_EQ(tokenizer.cls_id(), 2);
  EXPECT_EQ(tokenizer.sep_id(), 3);
  EXPECT_EQ(tokenizer.mask_id(), 4);
  EXPECT_EQ(tokenizer.token_id("##aff"), 6);
  EXPECT_EQ(tokenizer.token_id("missing"), -1);
  EXPECT_EQ(tokenizer.token(7), "##able");
  EXPECT_THROW(tokenizer.token(17), Error);
  EXPECT_THROW(tokenizer.token(-1), Error);
  // Special-token strings in the text are plain text (a documented difference from HF).
  EXPECT_EQ(tokenizer.tokenize("[MASK]"), (Words{"[UNK]", "[UNK]", "[UNK]"}));
}

// ---- vocab.txt validation -----------------------------------------------------------------------------------

class VocabFile : public TempDirTest {
 protected:
  VocabFile() : TempDirTest("vocab_file") {}

  // Writes `text` as a vocab file and loads it.
  absl::StatusOr<WordPieceTokenizer> load(const std::string& text) {
    const std::string file = path("vocab.txt");
    BF_CHECK(write_file_atomic(file, text).ok(), "cannot write ", file);
    return WordPieceTokenizer::load(file);
  }

  static constexpr char kSpecials[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
};

// The error mentions every piece of `parts` (the file name, a line number, the problem).
void expect_error(const absl::StatusOr<WordPieceTokenizer>& result, const std::vector<std::string>& parts) {
  ASSERT_FALSE(result.ok());
  for (const std::string& part : parts) {
    EXPECT_NE(result.status().message().find(part), absl::string_view::npos)
        << "'" << part << "' not in: " << result.status();
  }
}

TEST_F(VocabFile, LoadsWithOrWithoutFinalNewline) {
  absl::StatusOr<WordPieceTokenizer> with = load(std::string(kSpecials) + "hello\n##s\n");
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ(with->vocab_size(), 7);
  EXPECT_EQ(with->tokenize("Hellos"), (Words{"hello", "##s"}));
  absl::StatusOr<WordPieceTokenizer> without = load(std::string(kSpecials) + "hello");
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ(without->vocab_size(), 6);
}

TEST_F(VocabFile, RejectsBadFiles) {
  expect_error(WordPieceTokenizer::load(path("missing.txt")), {"missing.txt"});
  expect_error(load(""), {"vocab.txt", "empty"});
  expect_error(load(std::string(kSpecials) + "a\n\nb\n"), {"vocab.txt", "line 7 is empty"});
  expect_error(load(std::string(kSpecials) + "a\nb\na\n"), {"vocab.txt", "line 8", "'a'", "duplicates line 6"});
  expect_error(load(std::string(kSpecials) + "a\r\nb\r\n"), {"vocab.txt", "line 6", "whitespace"});
  expect_error(load(std::string(kSpecials) + "two words\n"), {"line 6", "whitespace"});
  expect_error(load(std::string(kSpecials) + "bad\xFFutf8\n"), {"line 6", "UTF-8"});
  expect_error(load("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n"), {"vocab.txt", "no [MASK]"});
  expect_error(load("[pad]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"), {"no [PAD]"});
}

// from_text is what load() does after reading the file: the same checks, errors naming the given source.
TEST_F(VocabFile, FromTextMatchesLoad) {
  const std::string text = std::string(kSpecials) + "hello\n##s\n";
  absl::StatusOr<WordPieceTokenizer> loaded = load(text);
  absl::StatusOr<WordPieceTokenizer> parsed = WordPieceTokenizer::from_text(text, "memory");
  ASSERT_TRUE(loaded.ok() && parsed.ok());
  EXPECT_EQ(parsed->vocab_size(), loaded->vocab_size());
  EXPECT_EQ(parsed->encode("Hellos"), loaded->encode("Hellos"));
  expect_error(WordPieceTokenizer::from_text(std::string(kSpecials) + "a\n\n", "memory"), {"memory", "line 7"});
}

// ---- Reference: Hugging Face BertTokenizer on BERT's uncased vocabulary -------------------------------------

TEST(Reference, MatchesHuggingFaceOnEveryFixtureText) {
  const std::string fixture_path = source_path("tests/train/fixtures/tokenizer_reference.json");
  absl::StatusOr<std::string> text = read_file(fixture_path);
  ASSERT_TRUE(text.ok()) << text.status();
  absl::StatusOr<Json> fixture = Json::parse(*text);
  ASSERT_TRUE(fixture.ok()) << fixture_path << ": " << fixture.status();
  ASSERT_EQ(fixture->get("unicode_version")->as_string(), unicode_version())
      << "the fixture was made with another Unicode version than train/unicode_tables.inc";

  const std::string vocab_path = source_path(fixture->get("vocab")->as_string());
  absl::StatusOr<WordPieceTokenizer> tokenizer = WordPieceTokenizer::load(vocab_path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->vocab_size(), 30522);
  EXPECT_EQ(tokenizer->pad_id(), 0);
  EXPECT_EQ(tokenizer->unk_id(), 100);
  EXPECT_EQ(tokenizer->cls_id(), 101);
  EXPECT_EQ(tokenizer->sep_id(), 102);
  EXPECT_EQ(tokenizer->mask_id(), 103);

  const Json::Array& cases = fixture->get("cases")->as_array();
  ASSERT_GE(cases.size(), 200u);
  int mismatches = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Json& c = cases[i];
    std::string input;
    if (const Json* hex = c.get("text_hex")) {
      input = absl::HexStringToBytes(hex->as_string());
    } else {
      input = c.get("text")->as_string();
    }
    std::vector<int32_t> want;
    for (const Json& id : c.get("ids")->as_array()) want.push_back(static_cast<int32_t>(id.as_int64()));
    const std::vector<int32_t> got = tokenizer->encode(input);
    if (got != want && ++mismatches <= 10) {
      std::vector<std::string> want_tokens;
      for (int32_t id : want) want_tokens.push_back(tokenizer->token(id));
      ADD_FAILURE() << "case " << i << " '" << absl::CHexEscape(input) << "'\n  got  "
                    << absl::StrJoin(tokenizer->tokenize(input), " ") << "\n  want " << absl::StrJoin(want_tokens, " ");
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << cases.size() << " cases";
}

}  // namespace
}  // namespace bertforge
