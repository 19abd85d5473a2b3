// The WordPiece tokenizer (see tokenizer.h): UTF-8 coding, lookups in the generated Unicode tables, the basic
// tokenizer steps, and vocab.txt loading and greedy longest-match-first WordPiece.
#include "train/tokenizer.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/file_io.h"

namespace bertforge {
namespace {

// ---- Unicode data (train/unicode_tables.inc) ----------------------------------------------------------------

// The general-category groups the basic tokenizer asks about.
enum class CharClass : uint8_t {
  kOther,
  kControl,         // C*: control, format, private use, surrogate, unassigned
  kSpaceSeparator,  // Zs
  kLineSeparator,   // Zl, Zp
  kPunctuation,     // P*
  kNonspacingMark,  // Mn
};

struct CharClassRange {
  char32_t first;  // the range runs to the next entry's first code point
  CharClass char_class;
};
struct LowercaseRange {
  char32_t first, last;
  int32_t stride;  // first, first + stride, ..., last lowercase to code point + delta
  int32_t delta;
};
struct LowercaseExpansion {
  char32_t code_point, lower0, lower1;
};
struct Decomposition {
  char32_t code_point, first, second;  // second = 0 for a singleton decomposition
};
struct CombiningClassRange {
  char32_t first, last;
  uint8_t combining_class;
};

#include "train/unicode_tables.inc"

constexpr char32_t kReplacementChar = 0xFFFD;

// The entry of a table sorted by `key` whose key is the largest one <= c, or nullptr if c is below them all.
template <typename Entry, size_t N, typename Key>
const Entry* last_entry_at_or_before(const Entry (&table)[N], char32_t c, Key key) {
  const Entry* it = std::upper_bound(std::begin(table), std::end(table), c,
                                     [&](char32_t value, const Entry& entry) { return value < key(entry); });
  return it == std::begin(table) ? nullptr : std::prev(it);
}

CharClass char_class_from_table(char32_t c) {
  return last_entry_at_or_before(unicode_tables::kCharClassRanges, c,
                                 [](const CharClassRange& r) { return r.first; })
      ->char_class;
}

CharClass char_class(char32_t c) {
  // ASCII is most of most text: it gets a direct table, filled once from the ranges.
  static const std::array<CharClass, 128> ascii_classes = [] {
    std::array<CharClass, 128> classes;
    for (char32_t a = 0; a < 128; ++a) classes[a] = char_class_from_table(a);
    return classes;
  }();
  return c < 128 ? ascii_classes[c] : char_class_from_table(c);
}

uint8_t combining_class(char32_t c) {
  // Below the first range (U+0300) every class is 0: a shortcut for ASCII and Latin-1.
  if (c < unicode_tables::kCombiningClassRanges[0].first) return 0;
  const CombiningClassRange* r = last_entry_at_or_before(unicode_tables::kCombiningClassRanges, c,
                                                         [](const CombiningClassRange& r) { return r.first; });
  return c <= r->last ? r->combining_class : 0;
}

// Appends the full canonical decomposition of c (recursive; Hangul syllables by the Unicode algorithm).
void append_decomposition(char32_t c, std::u32string& out) {
  constexpr char32_t kHangulFirst = 0xAC00, kHangulLast = 0xD7A3;
  constexpr char32_t kLeadFirst = 0x1100, kVowelFirst = 0x1161, kTrailBase = 0x11A7;
  constexpr char32_t kVowels = 21, kTrails = 28;
  if (c >= kHangulFirst && c <= kHangulLast) {
    const char32_t s = c - kHangulFirst;
    out.push_back(kLeadFirst + s / (kVowels * kTrails));
    out.push_back(kVowelFirst + (s % (kVowels * kTrails)) / kTrails);
    if (s % kTrails != 0) out.push_back(kTrailBase + s % kTrails);
    return;
  }
  // Nothing below the first entry (U+00C0) decomposes: a shortcut for ASCII.
  const Decomposition* d = c < unicode_tables::kDecompositions[0].code_point
                               ? nullptr
                               : last_entry_at_or_before(unicode_tables::kDecompositions, c,
                                                         [](const Decomposition& d) { return d.code_point; });
  if (d == nullptr || d->code_point != c) {
    out.push_back(c);
    return;
  }
  append_decomposition(d->first, out);
  if (d->second != 0) append_decomposition(d->second, out);
}

// ---- UTF-8 --------------------------------------------------------------------------------------------------

// Decodes the code point starting at bytes[i] and advances i past it. An invalid sequence (bad lead or
// continuation byte, truncated, overlong, a surrogate, above U+10FFFF) advances i by one byte only and
// returns U+FFFD with *valid = false, so decoding resumes at the next byte.
char32_t next_code_point(absl::string_view bytes, size_t& i, bool* valid) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  const unsigned char lead = byte(i);
  *valid = true;
  if (lead < 0x80) {
    ++i;
    return lead;
  }
  // The sequence length and payload bits that the lead byte announces, and the smallest code point that
  // needs that length (a smaller one is an overlong encoding). length = 0: not a lead byte.
  int length = 0;
  char32_t c = 0, smallest = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    c = lead & 0x1F;
    smallest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    c = lead & 0x0F;
    smallest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    c = lead & 0x07;
    smallest = 0x10000;
  }
  bool ok = length > 0 && i + length <= bytes.size();
  for (int k = 1; ok && k < length; ++k) {
    ok = (byte(i + k) & 0xC0) == 0x80;
    c = (c << 6) | (byte(i + k) & 0x3F);
  }
  ok = ok && c >= smallest && c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF);
  if (!ok) {
    *valid = false;
    ++i;
    return kReplacementChar;
  }
  i += length;
  return c;
}

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// ---- BERT's character classes -------------------------------------------------------------------------------

// Tab, newline and CR are controls in Unicode, but whitespace to BERT.
bool is_bert_control(char32_t c) {
  return c != '\t' && c != '\n' && c != '\r' && char_class(c) == CharClass::kControl;
}

// BERT's whitespace is space, tab, newline, CR and category Zs. HF then splits words with Python's
// str.split(), which also splits at Zl and Zp (U+2028, U+2029): they count as whitespace here.
bool is_bert_whitespace(char32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
  const CharClass cc = char_class(c);
  return cc == CharClass::kSpaceSeparator || cc == CharClass::kLineSeparator;
}

}  // namespace

const char* unicode_version() { return unicode_tables::kUnicodeVersion; }

// ---- Basic tokenizer steps ----------------------------------------------------------------------------------

namespace basic_tokenizer {

std::u32string decode_utf8(absl::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  bool valid;
  for (size_t i = 0; i < bytes.size();) out.push_back(next_code_point(bytes, i, &valid));
  return out;
}

std::string encode_utf8(const std::u32string& code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t c : code_points) append_utf8(c, out);
  return out;
}

std::u32string clean_text(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == kReplacementChar || is_bert_control(c)) continue;
    out.push_back(is_bert_whitespace(c) ? U' ' : c);
  }
  return out;
}

bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::u32string space_cjk(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (is_cjk_ideograph(c)) {
      out += U' ';
      out += c;
      out += U' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::u32string lowercase(const std::u32string& word) {
  std::u32string out;
  out.reserve(word.size());
  for (char32_t c : word) {
    if (c < 128) {  // a shortcut for ASCII
      out += c >= U'A' && c <= U'Z' ? c + (U'a' - U'A') : c;
      continue;
    }
    const LowercaseExpansion* e = last_entry_at_or_before(unicode_tables::kLowercaseExpansions, c,
                                                          [](const LowercaseExpansion& e) { return e.code_point; });
    if (e != nullptr && e->code_point == c) {
      out += e->lower0;
      out += e->lower1;
      continue;
    }
    const LowercaseRange* r = last_entry_at_or_before(unicode_tables::kLowercaseRanges, c,
                                                      [](const LowercaseRange& r) { return r.first; });
    const bool mapped = r != nullptr && c <= r->last && (c - r->first) % r->stride == 0;
    out += mapped ? static_cast<char32_t>(static_cast<int32_t>(c) + r->delta) : c;
  }
  return out;
}

std::u32string strip_accents(const std::u32string& word) {
  // NFD: decompose every code point, then put each run of combining marks in canonical order (a stable sort
  // by combining class; class-0 code points stay where they are).
  std::u32string nfd;
  nfd.reserve(word.size());
  for (char32_t c : word) append_decomposition(c, nfd);
  for (size_t i = 0; i < nfd.size();) {
    size_t end = i;
    while (end < nfd.size() && combining_class(nfd[end]) != 0) ++end;
    std::stable_sort(nfd.begin() + i, nfd.begin() + end,
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = std::max(end, i + 1);
  }
  std::u32string out;
  out.reserve(nfd.size());
  for (char32_t c : nfd) {
    if (char_class(c) != CharClass::kNonspacingMark) out += c;
  }
  return out;
}

bool is_punctuation(char32_t c) {
  const bool ascii_symbol = (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
                            (c >= 123 && c <= 126);
  return ascii_symbol || char_class(c) == CharClass::kPunctuation;
}

std::vector<std::u32string> split_punctuation(const std::u32string& word) {
  std::vector<std::u32string> pieces;
  bool start_new_piece = true;
  for (char32_t c : word) {
    if (is_punctuation(c)) {
      pieces.emplace_back(1, c);
      start_new_piece = true;
    } else {
      if (start_new_piece) pieces.emplace_back();
      start_new_piece = false;
      pieces.back() += c;
    }
  }
  return pieces;
}

}  // namespace basic_tokenizer

std::vector<std::string> basic_tokenize(absl::string_view text) {
  using namespace basic_tokenizer;
  const std::u32string spaced = space_cjk(clean_text(decode_utf8(text)));
  std::vector<std::string> words;
  for (size_t start = 0; start < spaced.size();) {
    if (spaced[start] == U' ') {
      ++start;
      continue;
    }
    size_t end = spaced.find(U' ', start);
    if (end == std::u32string::npos) end = spaced.size();
    const std::u32string word = spaced.substr(start, end - start);
    for (const std::u32string& piece : split_punctuation(strip_accents(lowercase(word)))) {
      words.push_back(encode_utf8(piece));
    }
    start = end;
  }
  return words;
}

// ---- WordPiece ------------------------------------------------------------------------------------------------

absl::StatusOr<WordPieceTokenizer> WordPieceTokenizer::load(const std::string& vocab_path) {
  BF_ASSIGN_OR_RETURN(const std::string text, read_file(vocab_path));
  return from_text(text, vocab_path);
}

absl::StatusOr<WordPieceTokenizer> WordPieceTokenizer::from_text(absl::string_view text, const std::string& source) {
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": the vocabulary file is empty"));
  // One token per line; a final newline ends the last line rather than starting an empty one.
  std::vector<std::string> tokens;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == absl::string_view::npos) end = text.size();
    tokens.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return from_tokens(std::move(tokens), source);
}

absl::StatusOr<WordPieceTokenizer> WordPieceTokenizer::from_tokens(std::vector<std::string> tokens,
                                                                   const std::string& source) {
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", tokens.size(), " tokens do not fit int32 ids"));
  }
  const auto line_error = [&](size_t id, const std::string& problem) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": line ", id + 1, problem));
  };
  WordPieceTokenizer tokenizer;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const std::string& token = tokens[id];
    if (token.empty()) return line_error(id, " is empty");
    if (token.find_first_of(" \t\r\n\v\f") != std::string::npos) {
      const bool crlf = token.back() == '\r';
      return line_error(id, absl::StrCat(": token '", absl::CHexEscape(token), "' contains whitespace",
                                         crlf ? " (Windows line endings?)" : ""));
    }
    int chars = 0;
    for (size_t i = 0; i < token.size(); ++chars) {
      bool valid;
      next_code_point(token, i, &valid);
      if (!valid) return line_error(id, ": the token is not valid UTF-8");
    }
    tokenizer.max_token_chars_ = std::max(tokenizer.max_token_chars_, chars);
    const auto [it, inserted] = tokenizer.ids_.emplace(token, static_cast<int32_t>(id));
    if (!inserted) {
      return line_error(id, absl::StrCat(": token '", token, "' duplicates line ", it->second + 1));
    }
  }
  const std::pair<const char*, int32_t*> specials[] = {{"[PAD]", &tokenizer.pad_id_},
                                                       {"[UNK]", &tokenizer.unk_id_},
                                                       {"[CLS]", &tokenizer.cls_id_},
                                                       {"[SEP]", &tokenizer.sep_id_},
                                                       {"[MASK]", &tokenizer.mask_id_}};
  for (const auto& [name, id] : specials) {
    *id = tokenizer.token_id(name);
    if (*id < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": the vocabulary has no ", name, " token (required: [PAD] [UNK] [CLS] [SEP] [MASK])"));
    }
  }
  tokenizer.tokens_ = std::move(tokens);
  return tokenizer;
}

int32_t WordPieceTokenizer::token_id(absl::string_view token) const {
  const auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

const std::string& WordPieceTokenizer::token(int32_t id) const {
  BF_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  return tokens_[id];
}

void WordPieceTokenizer::wordpiece(const std::string& word, std::vector<int32_t>& pieces) const {
  // Byte offsets of the word's code points (the word is valid UTF-8), and its end.
  std::vector<size_t> offsets;
  for (size_t i = 0; i < word.size(); ++i) {
    if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) offsets.push_back(i);
  }
  const int chars = static_cast<int>(offsets.size());
  offsets.push_back(word.size());
  if (chars > kMaxWordChars) {
    pieces.push_back(unk_id_);
    return;
  }
  const size_t first_piece = pieces.size();
  std::string candidate;
  for (int start = 0; start < chars;) {
    // The longest piece starting at `start` that is in the vocabulary.
    int32_t id = -1;
    int end = std::min(chars, start + max_token_chars_);
    for (; end > start; --end) {
      candidate.assign(start > 0 ? "##" : "");
      candidate.append(word, offsets[start], offsets[end] - offsets[start]);
      const auto it = ids_.find(candidate);
      if (it != ids_.end()) {
        id = it->second;
        break;
      }
    }
    if (id < 0) {  // nothing matches here: the whole word is unknown
      pieces.resize(first_piece);
      pieces.push_back(unk_id_);
      return;
    }
    pieces.push_back(id);
    start = end;
  }
}

std::vector<int32_t> WordPieceTokenizer::encode(absl::string_view text) const {
  std::vector<int32_t> ids;
  for (const std::string& word : basic_tokenize(text)) wordpiece(word, ids);
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(absl::string_view text) const {
  std::vector<std::string> pieces;
  for (int32_t id : encode(text)) pieces.push_back(tokens_[id]);
  return pieces;
}

}  // namespace bertforge
