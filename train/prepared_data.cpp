// Opening a bert_prep data directory (see prepared_data.h).
#include "train/prepared_data.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "train/tokenizer.h"

namespace bertforge {

absl::StatusOr<MlmVocab> load_prepared_vocab(const std::string& data_dir, int64_t model_vocab_size) {
  const std::string path = data_dir + "/vocab.txt";
  BF_ASSIGN_OR_RETURN(const WordPieceTokenizer tokenizer, WordPieceTokenizer::load(path));
  if (tokenizer.vocab_size() != model_vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, " has ", tokenizer.vocab_size(),
                                                   " tokens but the model's vocab_size is ", model_vocab_size));
  }
  return MlmVocab{tokenizer.vocab_size(), tokenizer.pad_id(), tokenizer.unk_id(), tokenizer.cls_id(),
                  tokenizer.sep_id(),     tokenizer.mask_id()};
}

absl::StatusOr<DataLoader> open_prepared_split(const std::string& data_dir, const std::string& split,
                                               const MlmVocab& vocab, const DataLoaderOptions& options) {
  BF_ASSIGN_OR_RETURN(const std::vector<std::string> shards, find_shards(data_dir + "/" + split));
  return DataLoader::open(shards, vocab, options);
}

}  // namespace bertforge
