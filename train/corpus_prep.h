// Text corpus -> token shards: what bert_prep does. Reads UTF-8 text files,
// splits them into documents, tokenizes with a WordPiece vocabulary (given, or
// learnt from the corpus first), sends each document to the training or the
// validation split, and writes zstd token shards (train/token_shard.h):
//
//   OUT/vocab.txt                   the vocabulary the shards use
//   OUT/train/shard-00000.zst ...   training documents
//   OUT/validation/shard-00000.zst  held-out documents
//
// The split is a pure function of (seed, document index): document i goes to
// validation when philox_uniform(seed, kValidationStreamTag, i) < fraction.
//
// Segments. A shard stores segments (its "documents"): by default one per
// document; with `sentences`, one per sentence of the document
// (split_sentences), all of a document's sentences going to the split chosen
// for that document, so the validation set holds the same text either way. The
// data loader joins consecutive segments with [SEP] (train/data_loader.h), so
// `sentences` gives a [SEP] after every sentence, as in the clipped-softmax
// paper's reference code (one [CLS] ... [SEP] per line, concatenated) rather
// than one per document. Empty segments (no tokens) are not written.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bertforge {

enum class DocumentSplit {
  kLine,       // every non-empty line is a document
  kBlankLine,  // documents are separated by blank lines
};

struct CorpusPrepConfig {
  std::vector<std::string> inputs;  // UTF-8 text files
  DocumentSplit split = DocumentSplit::kLine;
  std::string vocab_path;           // an existing vocab.txt; empty: learn one from the inputs
  int32_t learned_vocab_size = 8000;
  std::string out_dir;
  double validation_fraction = 0.01;
  int64_t shard_tokens = 50'000'000;  // a new shard starts once this many tokens are written
  uint64_t seed = 0;
  bool sentences = false;  // one segment per sentence instead of per document
};

struct CorpusPrepReport {
  int64_t train_documents = 0, validation_documents = 0;
  int64_t train_segments = 0, validation_segments = 0;  // equal to the documents unless `sentences`
  int64_t train_tokens = 0, validation_tokens = 0;
  int64_t unknown_tokens = 0;  // [UNK] among all tokens
  int64_t shards = 0;
  int32_t vocab_size = 0;
};

// The sentences of `text`, in order, as views into it, each trimmed of surrounding whitespace, none empty.
// A sentence ends
//   - at a line break ('\n'; the lines of a blank-line separated document are joined with '\n'), and
//   - after '.', '!' or '?', optionally followed by closing quotes or brackets (" ' ) ] } and the UTF-8
//     right quotes U+2019, U+201D, U+00BB), when whitespace or the end of the text comes next.
// Whitespace here is ' ', '\t', '\n' and '\r', which the tokenizer treats as word breaks (not '\v' or '\f',
// which it drops as control characters), so every cut falls between words: the tokens of the sentences, concatenated, are the tokens of the whole text. There is no
// list of abbreviations ("Mr. Smith" gives two sentences) and text after the last end mark is a sentence too.
std::vector<absl::string_view> split_sentences(absl::string_view text);

// `progress` (may be empty) receives a line now and then.
absl::StatusOr<CorpusPrepReport> prepare_corpus(const CorpusPrepConfig& config,
                                                const std::function<void(const std::string&)>& progress = {});

}  // namespace bertforge
