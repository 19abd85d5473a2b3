// Opening what bert_prep writes, for the tools that read it (bert_eval, bert_quant):
//   DIR/vocab.txt              the WordPiece vocabulary
//   DIR/train/*.zst            training shards (bert_quant calibrates on them)
//   DIR/validation/*.zst       validation shards (perplexity)
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "train/data_loader.h"
#include "train/mlm_masking.h"

namespace bertforge {

// The special-token ids of DIR/vocab.txt; InvalidArgument when its size is not the model's vocab_size.
absl::StatusOr<MlmVocab> load_prepared_vocab(const std::string& data_dir, int64_t model_vocab_size);

// A loader over DIR/<split>/*.zst (split: "train" or "validation"); NotFound naming the folder when it is
// missing or holds no shards.
absl::StatusOr<DataLoader> open_prepared_split(const std::string& data_dir, const std::string& split,
                                               const MlmVocab& vocab, const DataLoaderOptions& options);

}  // namespace bertforge
