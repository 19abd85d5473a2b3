// Fuzzes the WordPiece tokenizer (train/tokenizer.h) on arbitrary bytes, as bert_prep feeds it raw text:
// WordPieceTokenizer::tokenize and encode with the uncased BERT vocabulary of tests/train/fixtures, and
// basic_tokenize. Invalid UTF-8, control characters and huge words must all be handled.
// Properties: every id lies in the vocabulary and encode() agrees with tokenize(); basic_tokenize's words are
// valid UTF-8 without spaces.
#include <cstdint>
#include <cstdlib>

#include "tests/fuzz/fuzz_support.h"
#include "train/tokenizer.h"

namespace {

const bertforge::WordPieceTokenizer& tokenizer() {
  static const bertforge::WordPieceTokenizer* loaded = [] {
    absl::StatusOr<bertforge::WordPieceTokenizer> t =
        bertforge::WordPieceTokenizer::load(BERTFORGE_SOURCE_DIR "/tests/train/fixtures/bert_uncased_vocab.txt");
    if (!t.ok()) {
      std::fprintf(stderr, "fuzz_tokenizer: %s\n", std::string(t.status().message()).c_str());
      std::abort();
    }
    return new bertforge::WordPieceTokenizer(std::move(*t));
  }();
  return *loaded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> pieces = tokenizer().tokenize(text);
  const std::vector<int32_t> ids = tokenizer().encode(text);
  FUZZ_CHECK(ids.size() == pieces.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    FUZZ_CHECK(ids[i] >= 0 && ids[i] < tokenizer().vocab_size());
    FUZZ_CHECK(tokenizer().token(ids[i]) == pieces[i] || ids[i] == tokenizer().unk_id());
  }
  for (const std::string& word : bertforge::basic_tokenize(text)) {
    FUZZ_CHECK(!word.empty() && word.find(' ') == std::string::npos);
    FUZZ_CHECK(bertforge::basic_tokenizer::encode_utf8(bertforge::basic_tokenizer::decode_utf8(word)) == word);
  }
  return 0;
}
