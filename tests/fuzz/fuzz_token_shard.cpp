// Fuzzes the token-shard reader (train/token_shard.h) through read_shard, which the data loader calls on every
// shard. read_shard takes a path, so each input is written to a per-process temporary file, twice:
//   1. as it is: the zstd layer (frames, checksums, truncation) and whatever lies inside;
//   2. zstd-compressed first (zstd_compress, as a writer would): mutations then reach the shard's own fields
//      (magic, version, vocab_size, id width, counts, document lengths, ids) instead of dying at zstd's checksum.
// The corpus holds both kinds: shards bert_prep's ShardWriter wrote, and their decompressed contents.
// Properties: a refusal is a Status with a message; an accepted shard is consistent (offsets rise from 0 to the
// token count, every id below vocab_size).
#include <cstdint>

#include "core/zstd_io.h"
#include "tests/fuzz/fuzz_support.h"
#include "train/token_shard.h"

namespace {

void read_and_check(const std::string& path) {
  absl::StatusOr<bertforge::TokenShard> shard = bertforge::read_shard(path);
  if (bertforge::fuzz::refused(shard.status())) return;
  FUZZ_CHECK(shard->vocab_size > 0);
  FUZZ_CHECK(shard->document_offsets.front() == 0 && shard->document_offsets.back() == shard->tokens.size());
  for (size_t d = 0; d + 1 < shard->document_offsets.size(); ++d) {
    FUZZ_CHECK(shard->document_offsets[d] <= shard->document_offsets[d + 1]);
  }
  for (uint32_t id : shard->tokens) FUZZ_CHECK(id < shard->vocab_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bertforge::fuzz::FuzzInputFile input("shard.zst");
  read_and_check(input.write(data, size));
  absl::StatusOr<std::string> compressed =
      bertforge::zstd_compress(absl::string_view(reinterpret_cast<const char*>(data), size), /*level=*/1);
  FUZZ_CHECK(compressed.ok());
  read_and_check(input.write(reinterpret_cast<const uint8_t*>(compressed->data()), compressed->size()));
  return 0;
}
