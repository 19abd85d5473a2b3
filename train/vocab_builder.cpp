// WordPiece vocabulary builder (see vocab_builder.h): word counting, the alphabet, and the pair-merge loop.
#include "train/vocab_builder.h"

#include <algorithm>
#include <iterator>
#include <queue>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/file_io.h"
#include "train/tokenizer.h"

namespace bertforge {
namespace {

constexpr const char* kSpecialTokens[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
constexpr const char* kContinuation = "##";
constexpr size_t kReadChunkBytes = 1 << 20;

// The code points of a valid UTF-8 word, each as its bytes.
std::vector<absl::string_view> utf8_chars(absl::string_view word) {
  std::vector<absl::string_view> chars;
  for (size_t start = 0; start < word.size();) {
    size_t end = start + 1;
    while (end < word.size() && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) ++end;
    chars.push_back(word.substr(start, end - start));
    start = end;
  }
  return chars;
}

// The merge loop's state: the vocabulary so far, every distinct word as a sequence of piece ids, how often
// each adjacent pair of pieces occurs, and a max-heap of pairs by count. Heap entries are not removed when a
// count changes; a new entry is pushed instead, and an entry whose count is no longer current is skipped.
class PairMerger {
 public:
  explicit PairMerger(std::vector<std::string> vocab) : vocab_(std::move(vocab)) {
    for (size_t id = 0; id < vocab_.size(); ++id) ids_.emplace(vocab_[id], static_cast<int32_t>(id));
  }

  // The id of `piece`, or -1 if it is not in the vocabulary.
  int32_t piece_id(const std::string& piece) const {
    const auto it = ids_.find(piece);
    return it == ids_.end() ? -1 : it->second;
  }
  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  std::vector<std::string> take_vocab() { return std::move(vocab_); }

  // A distinct word, as its pieces, occurring `count` times in the corpus.
  void add_word(std::vector<int32_t> pieces, int64_t count) {
    const int32_t w = static_cast<int32_t>(words_.size());
    words_.push_back(std::move(pieces));
    word_counts_.push_back(count);
    count_pairs(w, +1);
    for (size_t i = 0; i + 1 < words_[w].size(); ++i) index_word(pair_key(words_[w][i], words_[w][i + 1]), w);
  }

  // Merges the most frequent pair into a new piece; false if no pair occurs at least min_count times.
  bool merge_most_frequent(int64_t min_count) {
    while (!heap_.empty()) {
      const Candidate top = heap_.top();
      heap_.pop();
      const auto it = pair_counts_.find(top.pair);
      if (it == pair_counts_.end() || it->second != top.count) continue;  // an outdated entry
      if (top.count < min_count) return false;
      merge(top.pair);
      return true;
    }
    return false;
  }

 private:
  struct Candidate {
    int64_t count;
    uint64_t pair;
    // The heap's top is the most frequent pair; among equals, the one with the smallest ids.
    bool operator<(const Candidate& other) const {
      return count != other.count ? count < other.count : pair > other.pair;
    }
  };

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
  }

  // Adds sign x (the word's count) to the count of each adjacent pair in word w, and queues the new counts.
  void count_pairs(int32_t w, int64_t sign) {
    const std::vector<int32_t>& pieces = words_[w];
    for (size_t i = 0; i + 1 < pieces.size(); ++i) {
      const uint64_t pair = pair_key(pieces[i], pieces[i + 1]);
      int64_t& count = pair_counts_[pair];
      count += sign * word_counts_[w];
      heap_.push({count, pair});
      if (count == 0) pair_counts_.erase(pair);
    }
  }

  // Records that word w holds `pair` (once, even if the pair occurs twice in it).
  void index_word(uint64_t pair, int32_t w) {
    std::vector<int32_t>& holders = pair_words_[pair];
    if (holders.empty() || holders.back() != w) holders.push_back(w);
  }

  void merge(uint64_t pair) {
    const int32_t left = static_cast<int32_t>(pair >> 32);
    const int32_t right = static_cast<int32_t>(pair & 0xFFFFFFFFu);
    // The right piece is a continuation piece: it loses its "##" in the merged one.
    const std::string merged = vocab_[left] + vocab_[right].substr(2);
    int32_t id = piece_id(merged);  // the same string can come from two different merges
    if (id < 0) {
      id = static_cast<int32_t>(vocab_.size());
      vocab_.push_back(merged);
      ids_.emplace(merged, id);
    }
    const std::vector<int32_t> holders = std::move(pair_words_[pair]);
    pair_words_.erase(pair);
    for (int32_t w : holders) {
      std::vector<int32_t>& pieces = words_[w];
      bool holds_pair = false;  // false for a word indexed twice (a merged string can repeat), merged already
      for (size_t i = 0; i + 1 < pieces.size() && !holds_pair; ++i) {
        holds_pair = pieces[i] == left && pieces[i + 1] == right;
      }
      if (!holds_pair) continue;
      count_pairs(w, -1);
      std::vector<int32_t> merged_pieces;
      merged_pieces.reserve(pieces.size());
      for (size_t i = 0; i < pieces.size(); ++i) {
        if (i + 1 < pieces.size() && pieces[i] == left && pieces[i + 1] == right) {
          merged_pieces.push_back(id);
          ++i;
        } else {
          merged_pieces.push_back(pieces[i]);
        }
      }
      pieces = std::move(merged_pieces);
      count_pairs(w, +1);
      // Pairs with the new piece are new to this word; every other pair of it was indexed already.
      for (size_t i = 0; i + 1 < pieces.size(); ++i) {
        if (pieces[i] == id || pieces[i + 1] == id) index_word(pair_key(pieces[i], pieces[i + 1]), w);
      }
    }
  }

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::vector<int32_t>> words_;  // distinct words as piece ids
  std::vector<int64_t> word_counts_;
  std::unordered_map<uint64_t, int64_t> pair_counts_;              // pair -> occurrences in the corpus (> 0)
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words_;  // pair -> the words that hold it
  std::priority_queue<Candidate> heap_;
};

}  // namespace

void WordCounter::add_text(absl::string_view text) {
  for (std::string& word : basic_tokenize(text)) ++counts_[std::move(word)];
}

absl::Status WordCounter::add_file(const std::string& path) {
  FileReader reader;
  BF_RETURN_IF_ERROR(reader.open(path));
  // Text up to the last line break read so far is counted; the rest waits for the next piece, so no word
  // (nor UTF-8 sequence) is cut in two.
  std::string pending;
  while (true) {
    const size_t old_size = pending.size();
    pending.resize(old_size + kReadChunkBytes);
    BF_ASSIGN_OR_RETURN(const size_t n, reader.read(pending.data() + old_size, kReadChunkBytes));
    pending.resize(old_size + n);
    if (n == 0) break;
    const size_t last_break = pending.rfind('\n');
    if (last_break == std::string::npos) continue;
    add_text(absl::string_view(pending).substr(0, last_break + 1));
    pending.erase(0, last_break + 1);
  }
  add_text(pending);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> build_wordpiece_vocab(const WordCounter& words,
                                                               const VocabBuilderOptions& options) {
  if (options.vocab_size <= 0 || options.max_alphabet <= 0 || options.min_pair_count <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("vocab builder: vocab_size (", options.vocab_size,
                                                   "), max_alphabet (", options.max_alphabet,
                                                   ") and min_pair_count (", options.min_pair_count,
                                                   ") must be positive"));
  }
  if (words.counts().empty()) {
    return absl::InvalidArgumentError("vocab builder: the corpus has no words");
  }

  // The alphabet: the most frequent characters, ties in code point order.
  std::unordered_map<std::string, int64_t> char_counts;
  for (const auto& [word, count] : words.counts()) {
    for (absl::string_view c : utf8_chars(word)) char_counts[std::string(c)] += count;
  }
  std::vector<std::pair<std::string, int64_t>> alphabet(char_counts.begin(), char_counts.end());
  std::sort(alphabet.begin(), alphabet.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (alphabet.size() > static_cast<size_t>(options.max_alphabet)) alphabet.resize(options.max_alphabet);
  const int64_t base_size = std::size(kSpecialTokens) + 2 * static_cast<int64_t>(alphabet.size());
  if (options.vocab_size < base_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vocab builder: vocab_size ", options.vocab_size, " cannot hold the 5 special tokens and the ",
        alphabet.size(), " alphabet characters as c and ##c (", base_size,
        " tokens); raise vocab_size or lower max_alphabet"));
  }

  std::vector<std::string> vocab(std::begin(kSpecialTokens), std::end(kSpecialTokens));
  for (const auto& [c, count] : alphabet) vocab.push_back(c);
  for (const auto& [c, count] : alphabet) vocab.push_back(kContinuation + c);
  PairMerger merger(std::move(vocab));

  // Every word as its character pieces; words that will be [UNK] anyway (too long, or with a character
  // outside the alphabet) take no part in merging.
  for (const auto& [word, count] : words.counts()) {
    const std::vector<absl::string_view> chars = utf8_chars(word);
    if (chars.size() > static_cast<size_t>(WordPieceTokenizer::kMaxWordChars)) continue;
    std::vector<int32_t> pieces;
    for (size_t i = 0; i < chars.size(); ++i) {
      const int32_t id = merger.piece_id(i == 0 ? std::string(chars[i]) : absl::StrCat(kContinuation, chars[i]));
      if (id < 0) break;
      pieces.push_back(id);
    }
    if (pieces.size() == chars.size()) merger.add_word(std::move(pieces), count);
  }

  while (merger.vocab_size() < options.vocab_size && merger.merge_most_frequent(options.min_pair_count)) {
  }
  return merger.take_vocab();
}

absl::Status write_vocab(const std::vector<std::string>& tokens, const std::string& path) {
  std::string text;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty() || tokens[i].find_first_of(" \t\r\n\v\f") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": token ", i, " ('", tokens[i],
                                                     "') is empty or holds whitespace; a vocab.txt cannot store it"));
    }
    absl::StrAppend(&text, tokens[i], "\n");
  }
  return write_file_atomic(path, text);
}

}  // namespace bertforge
