// BERT's uncased WordPiece tokenizer: text -> word pieces -> vocabulary ids, equal to Hugging Face's
// BertTokenizer(do_lower_case=True) on the same vocab.txt (tests/train/test_tokenizer.cpp checks ~200 sentences
// against it).
//
// Two stages, as in the original BERT code:
//  1. The basic tokenizer turns text into words (basic_tokenize), one step after another:
//       decode_utf8        UTF-8 bytes -> code points; every byte that is not part of a valid UTF-8 sequence
//                          becomes U+FFFD (what Python's bytes.decode("utf-8", errors="replace") gives, up to
//                          how many U+FFFDs, which step 2 drops anyway)
//       clean_text         drop NUL, U+FFFD and control/format/unassigned code points (category C*); turn
//                          whitespace (space, tab, newline, CR, category Zs; also Zl/Zp) into a space
//       space_cjk          put spaces around CJK ideographs, so each becomes a word of its own
//     then, for each space-separated word:
//       lowercase          per code point, as Python's str.lower() of that code point
//       strip_accents      canonical decomposition (NFD), then drop nonspacing marks (category Mn)
//       split_punctuation  every punctuation code point (category P*, and all ASCII symbols) becomes a word
//  2. WordPiece splits each word into vocabulary pieces, greedily taking the longest piece that is in the
//     vocabulary (pieces after the first carry the "##" prefix); a word with a part that matches no piece, or
//     longer than 100 code points, becomes the single piece [UNK].
//
// Unicode data (categories, lowercase, decompositions) comes from train/unicode_tables.inc, generated from
// Python's unicodedata by train/make_unicode_tables.py; unicode_version() says which Unicode.
//
// Known differences from HF: special-token strings inside the text ("[MASK]") are ordinary text here (HF's
// slow and fast tokenizers keep them whole; Google's original BERT code does not); encode() adds no [CLS] or
// [SEP]. HF's fast (Rust) tokenizer also differs from its slow one on code points newer than its Unicode tables
// and on unassigned ones (kept as [UNK] there, dropped here and in the slow one).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bertforge {

// The Unicode version of the tokenizer's tables ("14.0.0").
const char* unicode_version();

// ---- Basic tokenizer --------------------------------------------------------------------------------------

// The words of `text` (UTF-8) after all basic-tokenizer steps, in UTF-8.
std::vector<std::string> basic_tokenize(absl::string_view text);

// The steps of basic_tokenize, exposed for tests; see the top of this file.
namespace basic_tokenizer {

std::u32string decode_utf8(absl::string_view bytes);
std::string encode_utf8(const std::u32string& code_points);
std::u32string clean_text(const std::u32string& text);
std::u32string space_cjk(const std::u32string& text);
std::u32string lowercase(const std::u32string& word);
std::u32string strip_accents(const std::u32string& word);
std::vector<std::u32string> split_punctuation(const std::u32string& word);

// Hugging Face's _is_chinese_char: the CJK Unified Ideographs blocks (and extensions, compatibility).
bool is_cjk_ideograph(char32_t c);
// BERT's punctuation: category P*, or any ASCII character that is neither a letter, a digit, a space nor a
// control (so "$", "+", "^", "`" count too).
bool is_punctuation(char32_t c);

}  // namespace basic_tokenizer

// ---- WordPiece ----------------------------------------------------------------------------------------------

class WordPieceTokenizer {
 public:
  // Words longer than this many code points become [UNK] (HF's max_input_chars_per_word).
  static constexpr int kMaxWordChars = 100;

  // Reads a vocab.txt: one token per line, the line number minus one is the id. Fails, naming the file and
  // line, on an unreadable file, an empty line, a token with whitespace or invalid UTF-8, a duplicate token,
  // or a missing [PAD], [UNK], [CLS], [SEP] or [MASK].
  static absl::StatusOr<WordPieceTokenizer> load(const std::string& vocab_path);
  // The same from the bytes of a vocab.txt in memory; `source` names it in errors.
  static absl::StatusOr<WordPieceTokenizer> from_text(absl::string_view text, const std::string& source);
  // The same from the tokens of a vocabulary in memory, one per id; `source` names it in errors.
  static absl::StatusOr<WordPieceTokenizer> from_tokens(std::vector<std::string> tokens,
                                                        const std::string& source);

  // The ids of tokenize(text); no [CLS]/[SEP] are added.
  std::vector<int32_t> encode(absl::string_view text) const;
  // The word pieces of `text` (UTF-8), e.g. "Unaffable!" -> {"un", "##aff", "##able", "!"}.
  std::vector<std::string> tokenize(absl::string_view text) const;

  // The id of `token`, or -1 when the vocabulary lacks it.
  int32_t token_id(absl::string_view token) const;
  // The token with id `id`, which must be in [0, vocab_size()).
  const std::string& token(int32_t id) const;
  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }

  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t mask_id() const { return mask_id_; }

 private:
  WordPieceTokenizer() = default;
  // Appends the pieces of one basic-tokenizer word to `pieces`, as ids.
  void wordpiece(const std::string& word, std::vector<int32_t>& pieces) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  int max_token_chars_ = 0;  // code points in the longest token, "##" included: no longer piece can match
  int32_t pad_id_ = -1, unk_id_ = -1, cls_id_ = -1, sep_id_ = -1, mask_id_ = -1;
};

}  // namespace bertforge
