// Fuzzes vocab.txt loading (train/tokenizer.h) through WordPieceTokenizer::from_text, the in-memory twin of
// WordPieceTokenizer::load that bert_prep and every tool with a tokenizer use.
// Properties: a refusal is a Status with a message; an accepted vocabulary has the five special tokens, maps
// every token back to its id, and tokenizes a sentence into ids within it.
#include <cstdint>

#include "tests/fuzz/fuzz_support.h"
#include "train/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bertforge::WordPieceTokenizer;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<WordPieceTokenizer> tokenizer = WordPieceTokenizer::from_text(text, "fuzz_vocab.txt");
  if (bertforge::fuzz::refused(tokenizer.status())) return 0;
  FUZZ_CHECK(tokenizer->vocab_size() > 0);
  for (int32_t id : {tokenizer->pad_id(), tokenizer->unk_id(), tokenizer->cls_id(), tokenizer->sep_id(),
                     tokenizer->mask_id()}) {
    FUZZ_CHECK(id >= 0 && id < tokenizer->vocab_size());
    FUZZ_CHECK(tokenizer->token_id(tokenizer->token(id)) == id);
  }
  for (int32_t id : tokenizer->encode("Hello, world! Unaffable ##ing caf\xc3\xa9 \xe4\xb8\xad")) {
    FUZZ_CHECK(id >= 0 && id < tokenizer->vocab_size());
  }
  return 0;
}
