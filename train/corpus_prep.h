// Text corpus -> token shards: what bert_prep does. Reads UTF-8 text files,
// splits them into documents, tokenizes with a WordPiece vocabulary (given, or
// learnt from the corpus first), sends each document to the training or the
// validation split, and writes zstd token shards:
//
//   OUT/vocab.txt                   the vocabulary the shards use
//   OUT/train/shard-00000.zst ...   training documents
//   OUT/validation/shard-00000.zst  held-out documents
//
// The split is a pure function of (seed, document index): document i goes to
// validation when philox_uniform(seed, kValidationStreamTag, i) < fraction.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

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
};

struct CorpusPrepReport {
  int64_t train_documents = 0, validation_documents = 0;
  int64_t train_tokens = 0, validation_tokens = 0;
  int64_t unknown_tokens = 0;  // [UNK] among all tokens
  int64_t shards = 0;
  int32_t vocab_size = 0;
};

// `progress` (may be empty) receives a line now and then.
absl::StatusOr<CorpusPrepReport> prepare_corpus(const CorpusPrepConfig& config,
                                                const std::function<void(const std::string&)>& progress = {});

}  // namespace bertforge
