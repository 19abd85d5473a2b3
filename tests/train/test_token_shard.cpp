// Token shards: round trips at both id widths, and every kind of damage
// (bad magic, unknown version, truncation, count mismatches, ids out of range)
// rejected with an error naming the file.
#include "train/token_shard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/zstd_io.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using test_support::TempDirTest;

class TokenShardTest : public TempDirTest {
 protected:
  TokenShardTest() : TempDirTest("token_shard") {}

  // Writes `docs` as a shard at `file`.
  void write_shard(const std::string& file, uint32_t vocab_size, const std::vector<std::vector<uint32_t>>& docs) {
    ShardWriter writer;
    ASSERT_TRUE(writer.open(file, vocab_size).ok());
    for (const std::vector<uint32_t>& doc : docs) ASSERT_TRUE(writer.add_document(doc).ok());
    ASSERT_TRUE(writer.close().ok());
  }

  // A valid shard of vocab 1000 holding two documents of 3 and 2 ids, and its decompressed bytes.
  std::string good_stream() {
    const std::string file = path("good.zst");
    write_shard(file, 1000, {{7, 8, 9}, {10, 11}});
    const absl::StatusOr<std::string> packed = read_file(file);
    EXPECT_TRUE(packed.ok());
    const absl::StatusOr<std::string> raw = zstd_decompress(*packed);
    EXPECT_TRUE(raw.ok());
    return *raw;
  }

  // Compresses `raw` into `file` as a (possibly damaged) shard.
  void write_stream(const std::string& file, const std::string& raw) {
    const absl::StatusOr<std::string> packed = zstd_compress(raw);
    ASSERT_TRUE(packed.ok());
    ASSERT_TRUE(write_file_atomic(file, *packed).ok());
  }

  // read_shard(file) fails with a message holding `file` and `fragment`.
  void expect_rejected(const std::string& file, const std::string& fragment, uint32_t expected_vocab = 0) {
    const absl::StatusOr<TokenShard> shard = read_shard(file, expected_vocab);
    ASSERT_FALSE(shard.ok()) << "accepted " << file;
    const std::string message(shard.status().message());
    EXPECT_NE(message.find(file), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << "\"" << message << "\" lacks \"" << fragment << "\"";
  }
};

void set_le(std::string& bytes, size_t at, uint64_t value, int width) {
  for (int k = 0; k < width; ++k) bytes[at + k] = static_cast<char>(value >> (8 * k));
}

TEST_F(TokenShardTest, RoundTripWithTwoByteIds) {
  const std::vector<std::vector<uint32_t>> docs = {{5, 6, 7, 8}, {}, {29999}, {0, 1, 2, 3, 4, 5, 6}};
  write_shard(path("a.zst"), 30000, docs);
  const absl::StatusOr<TokenShard> shard = read_shard(path("a.zst"), 30000);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ(shard->vocab_size, 30000u);
  EXPECT_EQ(shard->document_count(), 4u);
  EXPECT_EQ(shard->document_offsets, (std::vector<uint64_t>{0, 4, 4, 5, 12}));
  EXPECT_EQ(shard->tokens, (std::vector<uint32_t>{5, 6, 7, 8, 29999, 0, 1, 2, 3, 4, 5, 6}));

  // Ids are stored as u16: the decompressed stream is header + 4 lengths * 4 + 12 ids * 2 bytes.
  const absl::StatusOr<std::string> raw = zstd_decompress(*read_file(path("a.zst")));
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->size(), kTokenShardHeaderBytes + 4 * 4 + 12 * 2);
  EXPECT_EQ(raw->substr(0, 8), "BFTOKSH1");
}

TEST_F(TokenShardTest, RoundTripWithFourByteIdsAndManyTokens) {
  // Over 2^16 ids per document so the writer and reader work in several pieces.
  std::vector<std::vector<uint32_t>> docs(3);
  for (uint32_t i = 0; i < 150000; ++i) docs[i % 3].push_back((i * 2654435761u) % 100000);
  write_shard(path("big.zst"), 100000, docs);
  const absl::StatusOr<TokenShard> shard = read_shard(path("big.zst"));
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ(shard->vocab_size, 100000u);
  ASSERT_EQ(shard->document_count(), 3u);
  for (int d = 0; d < 3; ++d) {
    const std::vector<uint32_t> got(shard->tokens.begin() + shard->document_offsets[d],
                                    shard->tokens.begin() + shard->document_offsets[d + 1]);
    EXPECT_EQ(got, docs[d]) << "document " << d;
  }
  EXPECT_EQ(token_shard_id_bytes(65536), 2u);
  EXPECT_EQ(token_shard_id_bytes(65537), 4u);
}

TEST_F(TokenShardTest, EmptyShardRoundTrips) {
  write_shard(path("empty.zst"), 10, {});
  const absl::StatusOr<TokenShard> shard = read_shard(path("empty.zst"));
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ(shard->document_count(), 0u);
  EXPECT_TRUE(shard->tokens.empty());
}

TEST_F(TokenShardTest, WriterRejectsBadIdsAndCommitsOnlyOnClose) {
  const std::string file = path("w.zst");
  ShardWriter writer;
  EXPECT_FALSE(writer.open(file, 0).ok());
  ASSERT_TRUE(writer.open(file, 100).ok());
  ASSERT_TRUE(writer.add_document(std::vector<uint32_t>{1, 2, 3}).ok());
  const absl::Status too_big = writer.add_document(std::vector<uint32_t>{4, 100});
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_big.message().find(file), absl::string_view::npos) << too_big;
  EXPECT_NE(too_big.message().find("token id 100 at position 1 of document 1"), absl::string_view::npos) << too_big;
  EXPECT_FALSE(writer.add_document(std::vector<int32_t>{5, -1}).ok());
  ASSERT_TRUE(writer.add_document(std::vector<int32_t>{5, 6}).ok());
  EXPECT_EQ(writer.token_count(), 5u);
  EXPECT_EQ(writer.document_count(), 2u);  // the rejected documents left no trace
  EXPECT_FALSE(std::filesystem::exists(file));
  ASSERT_TRUE(writer.close().ok());

  const absl::StatusOr<TokenShard> shard = read_shard(file);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ(shard->tokens, (std::vector<uint32_t>{1, 2, 3, 5, 6}));
  EXPECT_FALSE(writer.close().ok());  // closed already
}

TEST_F(TokenShardTest, RejectsBadMagic) {
  std::string raw = good_stream();
  raw[3] = 'X';
  write_stream(path("magic.zst"), raw);
  expect_rejected(path("magic.zst"), "bad magic");
}

TEST_F(TokenShardTest, RejectsUnknownVersion) {
  std::string raw = good_stream();
  set_le(raw, 8, 2, 4);
  write_stream(path("version.zst"), raw);
  expect_rejected(path("version.zst"), "unsupported token shard version 2");
}

TEST_F(TokenShardTest, RejectsTruncatedFile) {
  const std::string file = path("cut.zst");
  write_shard(file, 1000, {{1, 2, 3, 4, 5, 6, 7, 8}});
  const absl::StatusOr<std::string> bytes = read_file(file);
  ASSERT_TRUE(bytes.ok());
  for (size_t cut : {1, 3, 6}) {
    ASSERT_TRUE(write_file_atomic(file, bytes->substr(0, bytes->size() - cut)).ok());
    expect_rejected(file, "truncated");
  }
}

TEST_F(TokenShardTest, RejectsShortHeader) {
  write_stream(path("short.zst"), good_stream().substr(0, 20));
  expect_rejected(path("short.zst"), "shorter than the 36-byte header");
}

TEST_F(TokenShardTest, RejectsTokenCountMismatch) {
  const std::string raw = good_stream();  // lengths 3 + 2, five 2-byte ids

  std::string more_claimed = raw;  // the header claims 6 tokens
  set_le(more_claimed, 20, 6, 8);
  write_stream(path("count.zst"), more_claimed);
  expect_rejected(path("count.zst"), "lengths sum to 5 tokens but the header says 6");

  // Header and lengths agree on 5, but the stream holds only 4 ids.
  write_stream(path("short_ids.zst"), raw.substr(0, raw.size() - 2));
  expect_rejected(path("short_ids.zst"), "the stream ends after 4 of the 5 token ids");

  // ... or 6.
  write_stream(path("long_ids.zst"), raw + std::string(2, '\0'));
  expect_rejected(path("long_ids.zst"), "more data than the 5 tokens");

  std::string fewer_documents = raw;  // 3 document lengths announced, 2 stored
  set_le(fewer_documents, 28, 1000000, 8);
  write_stream(path("docs.zst"), fewer_documents);
  expect_rejected(path("docs.zst"), "document lengths");
}

TEST_F(TokenShardTest, RejectsIdOutOfRange) {
  std::string raw = good_stream();
  set_le(raw, raw.size() - 2, 1000, 2);  // the last id becomes 1000 in a vocab of 1000
  write_stream(path("range.zst"), raw);
  expect_rejected(path("range.zst"), "token id 1000 at index 4 is outside the vocabulary [0, 1000)");
}

TEST_F(TokenShardTest, RejectsInconsistentIdWidthAndVocabMismatch) {
  std::string raw = good_stream();
  set_le(raw, 16, 4, 4);  // 4-byte ids claimed for a vocab of 1000
  write_stream(path("width.zst"), raw);
  expect_rejected(path("width.zst"), "corrupt token shard header");

  write_stream(path("vocab.zst"), good_stream());
  expect_rejected(path("vocab.zst"), "vocab_size 1000, expected 30522", 30522);
}

TEST_F(TokenShardTest, RejectsFilesThatAreNotShards) {
  ASSERT_TRUE(write_file_atomic(path("text.zst"), "plain text, not zstd").ok());
  expect_rejected(path("text.zst"), "corrupt zstd data");
  ASSERT_TRUE(write_file_atomic(path("empty.zst"), "").ok());
  expect_rejected(path("empty.zst"), "empty file");
  expect_rejected(path("missing.zst"), "cannot open");
}

}  // namespace
}  // namespace bertforge
