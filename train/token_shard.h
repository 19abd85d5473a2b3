// Token shards: the files bert_prep writes and the data loader reads, holding
// tokenized documents as one zstd-compressed stream.
//
// A shard file is a single zstd stream (core/zstd_io.h; frames carry zstd's
// content checksum). Decompressed, it is, all integers little-endian:
//
//   offset  size             field
//   0       8                magic "BFTOKSH1"
//   8       4                version (u32) = 1
//   12      4                vocab_size (u32): every id is < vocab_size
//   16      4                id_bytes (u32): 2 when vocab_size <= 65536, else 4
//   20      8                token_count (u64)
//   28      8                document_count (u64)
//   36      4 * documents    document lengths (u32 each), in tokens
//   ...     id_bytes * tokens the token ids (u16 or u32), documents back to back
//
// and nothing after the last id. The header sits inside the compressed stream
// so that a shard is an ordinary .zst file (`zstd -d` shows it). Document
// boundaries are stored as lengths rather than separator ids, so no id is
// reserved and the loader decides how documents are joined. (A "document" is
// whatever segment the writer chose: bert_prep --sentences writes sentences.)
//
// Integrity: besides zstd's checksum (corruption) and its frame check
// (truncation), the reader requires the lengths to sum to token_count, the
// stream to end exactly after token_count ids, and every id to be below
// vocab_size. Every error names the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace bertforge {

inline constexpr char kTokenShardMagic[8] = {'B', 'F', 'T', 'O', 'K', 'S', 'H', '1'};
inline constexpr uint32_t kTokenShardVersion = 1;
inline constexpr size_t kTokenShardHeaderBytes = 36;

// Bytes per stored id: 2 when every id fits in u16 (vocab_size <= 65536), else 4.
inline uint32_t token_shard_id_bytes(uint32_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

// A shard in memory. Ids are widened to u32 whatever their stored width.
struct TokenShard {
  uint32_t vocab_size = 0;
  std::vector<uint32_t> tokens;
  // Document d is tokens[document_offsets[d], document_offsets[d + 1]);
  // document_offsets has document_count() + 1 entries, the first 0, the last tokens.size().
  std::vector<uint64_t> document_offsets{0};

  uint64_t document_count() const { return document_offsets.size() - 1; }
};

// Writes one shard: open(), add_document() for each document, close().
// Documents are buffered in memory (4 bytes per token) and written at close(),
// because the header at the front holds the counts; bert_prep bounds the shard
// size. Nothing appears at `path` until close() succeeds (an atomic write).
class ShardWriter {
 public:
  // vocab_size must be at least 1.
  absl::Status open(const std::string& path, uint32_t vocab_size);
  // Appends a document (it may be empty). An id >= vocab_size is an error
  // naming the file, the document and the position; the shard is unchanged then.
  absl::Status add_document(absl::Span<const uint32_t> ids);
  absl::Status add_document(absl::Span<const int32_t> ids);
  // Compresses and commits the file; the writer is closed afterwards either way.
  absl::Status close();

  uint64_t token_count() const { return shard_.tokens.size(); }
  uint64_t document_count() const { return shard_.document_count(); }

 private:
  std::string path_;
  bool open_ = false;
  TokenShard shard_;
};

// Reads and validates a whole shard, decoding the stream piece by piece.
// expected_vocab_size 0 accepts any vocabulary; otherwise the header must
// match it. Errors (absl::DataLossError for a damaged or inconsistent file,
// InvalidArgumentError for a vocabulary mismatch) name `path` and the problem.
absl::StatusOr<TokenShard> read_shard(const std::string& path, uint32_t expected_vocab_size = 0);

}  // namespace bertforge
