// small_tokenizer(): a 14-token WordPiece vocabulary for tests that tokenize text with a tiny model.
//
//   [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, the 5, cat 6, sat 7, on 8, mat 9, a 10, dog 11, ##s 12, ! 13
#pragma once

#include <utility>

#include "core/check.h"
#include "train/tokenizer.h"

namespace bertforge::test_support {

inline WordPieceTokenizer small_tokenizer() {
  absl::StatusOr<WordPieceTokenizer> tokenizer = WordPieceTokenizer::from_tokens(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "##s", "!"},
      "small vocab");
  BF_CHECK(tokenizer.ok(), tokenizer.status().ToString());
  return *std::move(tokenizer);
}

}  // namespace bertforge::test_support
