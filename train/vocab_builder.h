// WordPiece vocabulary builder, for users without a vocab.txt: counts the words of a text corpus (after BERT's
// basic tokenizer, train/tokenizer.h) and learns a vocabulary of a requested size.
//
// The vocabulary is, in order:
//   1. the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0-4);
//   2. the corpus's characters, most frequent first (at most max_alphabet of them), each as a word-initial
//      piece "c" and as a continuation piece "##c": with these alone every word made of alphabet characters
//      can be tokenized, one piece per character, so the corpus has no [UNK] but for rarer characters and
//      words longer than 100 characters;
//   3. pieces learnt by merging, as Hugging Face's WordPiece trainer does (byte-pair encoding over characters,
//      with "##" marking continuation pieces): every word starts as its character pieces ("low" = l ##o ##w);
//      the adjacent pair of pieces that occurs most often in the corpus (counting each word as often as it
//      occurs) is merged into a new piece (l ##o -> lo) everywhere, and added to the vocabulary; repeat until
//      the vocabulary is full or no pair occurs min_pair_count times. Ties go to the pair whose pieces were
//      added first, so the result does not depend on hash-map order.
// Tokenizing then uses greedy longest match over this vocabulary (WordPieceTokenizer), not the merge order.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bertforge {

struct VocabBuilderOptions {
  int32_t vocab_size = 30522;   // the vocabulary's size; it comes out smaller when merging stops early
  int32_t max_alphabet = 1000;  // keep this many most frequent characters; words with others become [UNK]
  int64_t min_pair_count = 2;   // stop merging when the most frequent pair occurs fewer times than this
};

// How often each basic-tokenizer word occurs in a corpus.
class WordCounter {
 public:
  void add_text(absl::string_view text);
  // Adds a UTF-8 text file, read in pieces that end at line breaks (any size of file).
  absl::Status add_file(const std::string& path);
  const std::unordered_map<std::string, int64_t>& counts() const { return counts_; }

 private:
  std::unordered_map<std::string, int64_t> counts_;
};

// The vocabulary learnt from `words` (see the top of this file). Fails when options.vocab_size cannot hold the
// special tokens and both forms of every alphabet character, or when there are no words.
absl::StatusOr<std::vector<std::string>> build_wordpiece_vocab(const WordCounter& words,
                                                               const VocabBuilderOptions& options);

// Writes `tokens` to `path` as a vocab.txt (one token per line) atomically: a crash leaves the old file or the
// complete new one. Fails on a token that is empty or holds whitespace, which a vocab.txt cannot represent.
absl::Status write_vocab(const std::vector<std::string>& tokens, const std::string& path);

}  // namespace bertforge
