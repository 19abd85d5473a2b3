// Tests for zstd compression in memory and through ZstdFileWriter/Reader:
// round trips of small and multi-megabyte, multi-frame data, and rejection of
// truncated, empty and garbage input.
#include "core/zstd_io.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/check.h"
#include "core/file_io.h"
#include "core/philox.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

namespace fs = std::filesystem;
using test_support::TempDirTest;

// Compressible but not trivial: random words from a small vocabulary.
std::string text_like(size_t n, uint64_t seed) {
  static const char* const kWords[] = {"the ", "model ", "attention ", "softmax ", "token ", "layer ", "of ", "a "};
  std::string out;
  for (uint64_t i = 0; out.size() < n; ++i) out += kWords[philox_uint32(seed, 0, i) % 8];
  out.resize(n);
  return out;
}

// Incompressible bytes.
std::string random_bytes(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(philox_uint32(seed, 1, i));
  return out;
}

void expect_data_loss(const absl::Status& status, absl::string_view fragment) {
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_NE(status.message().find(fragment), absl::string_view::npos)
      << "\"" << status.message() << "\" lacks \"" << fragment << "\"";
}

// Each test gets a fresh directory dir_, removed afterwards.
class ZstdIo : public TempDirTest {
 protected:
  ZstdIo() : TempDirTest("zstd") {}

  // Writes `data` through ZstdFileWriter in `piece`-byte writes.
  void write_zst(const std::string& file, const std::string& data, size_t piece) {
    ZstdFileWriter writer;
    ASSERT_TRUE(writer.open(file).ok());
    for (size_t k = 0; k < data.size(); k += piece) {
      ASSERT_TRUE(writer.write(absl::string_view(data).substr(k, piece)).ok());
    }
    ASSERT_TRUE(writer.close().ok());
  }

  // Reads a whole file through ZstdFileReader in `piece`-byte reads.
  absl::StatusOr<std::string> read_zst(const std::string& file, size_t piece) {
    ZstdFileReader reader;
    BF_RETURN_IF_ERROR(reader.open(file));
    std::string out, buffer(piece, '\0');
    while (true) {
      BF_ASSIGN_OR_RETURN(size_t got, reader.read(buffer.data(), piece));
      if (got == 0) return out;
      out.append(buffer.data(), got);
    }
  }

  void write_raw(const std::string& file, const std::string& bytes) {
    ASSERT_TRUE(write_file_atomic(file, bytes).ok());
  }
};

TEST_F(ZstdIo, InMemoryRoundTrip) {
  for (const std::string& data : {std::string(), std::string("x"), text_like(1000, 1), random_bytes(70000, 2)}) {
    absl::StatusOr<std::string> packed = zstd_compress(data);
    ASSERT_TRUE(packed.ok()) << packed.status();
    absl::StatusOr<std::string> back = zstd_decompress(*packed);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, data);
  }
}

TEST_F(ZstdIo, CompressesText) {
  const std::string data = text_like(1 << 20, 3);
  absl::StatusOr<std::string> packed = zstd_compress(data, 19);
  ASSERT_TRUE(packed.ok());
  EXPECT_LT(packed->size(), data.size() / 3);
}

TEST_F(ZstdIo, RejectsBadLevel) {
  EXPECT_EQ(zstd_compress("x", 1000).status().code(), absl::StatusCode::kInvalidArgument);
  ZstdFileWriter writer;
  EXPECT_EQ(writer.open(path("x.zst"), 1000).code(), absl::StatusCode::kInvalidArgument);
}

// Several megabytes, an exact multiple of zstd's output chunk, and frames
// concatenated one after another decode as one stream.
TEST_F(ZstdIo, LargeMultiFrameRoundTrip) {
  const std::string a = text_like(3 << 20, 4), b = random_bytes(1 << 20, 5), c = text_like(131072 * 2, 6);
  const std::string stream = *zstd_compress(a) + *zstd_compress(b, 1) + *zstd_compress(c, 19);
  absl::StatusOr<std::string> back = zstd_decompress(stream);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == a + b + c);

  const std::string file = path("frames.zst");
  write_raw(file, stream);
  for (size_t piece : {size_t{1} << 20, size_t{131072}, size_t{4093}}) {
    absl::StatusOr<std::string> streamed = read_zst(file, piece);
    ASSERT_TRUE(streamed.ok()) << streamed.status();
    EXPECT_TRUE(*streamed == a + b + c) << "piece " << piece;
  }
}

TEST_F(ZstdIo, FileWriterReaderRoundTrip) {
  const std::string data = text_like(5 << 20, 7) + random_bytes(300000, 8);
  const std::string file = path("shard.zst");
  write_zst(file, data, 65537);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);  // no temporary left
  absl::StatusOr<std::string> back = read_zst(file, 100000);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == data);
  // The file is a standard zstd stream: the in-memory decoder reads it too.
  EXPECT_TRUE(*zstd_decompress(*read_file(file)) == data);
}

TEST_F(ZstdIo, FileWriterWithNoData) {
  const std::string file = path("empty_payload.zst");
  write_zst(file, "", 1);
  absl::StatusOr<std::string> back = read_zst(file, 16);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, "");
}

TEST_F(ZstdIo, UnclosedWriterLeavesNoFile) {
  const std::string file = path("never.zst");
  {
    ZstdFileWriter writer;
    ASSERT_TRUE(writer.open(file).ok());
    ASSERT_TRUE(writer.write(text_like(100000, 9)).ok());
  }
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 0);
}

TEST_F(ZstdIo, RejectsTruncatedStream) {
  const std::string data = text_like(1 << 20, 10);
  const std::string packed = *zstd_compress(data);
  for (size_t cut : {size_t{1}, size_t{4}, size_t{100}, packed.size() / 2, packed.size() - 5}) {
    const std::string truncated = packed.substr(0, packed.size() - cut);
    expect_data_loss(zstd_decompress(truncated).status(), "truncated");
    const std::string file = path("cut.zst");
    write_raw(file, truncated);
    const absl::Status streamed = read_zst(file, 65536).status();
    expect_data_loss(streamed, "truncated");
    EXPECT_NE(streamed.message().find(file), absl::string_view::npos) << streamed;
  }
  // A complete frame followed by a truncated one.
  const std::string two = packed + packed.substr(0, packed.size() / 2);
  expect_data_loss(zstd_decompress(two).status(), "truncated");
}

TEST_F(ZstdIo, RejectsGarbage) {
  const std::string garbage = "this is not zstd data at all, just text";
  expect_data_loss(zstd_decompress(garbage).status(), "corrupt zstd data");
  const std::string file = path("garbage.zst");
  write_raw(file, garbage);
  expect_data_loss(read_zst(file, 1024).status(), "corrupt zstd data");

  // Garbage after a valid frame.
  const std::string packed = *zstd_compress("hello");
  expect_data_loss(zstd_decompress(packed + garbage).status(), "corrupt zstd data");

  // A flipped byte inside the compressed payload: caught by the frame checksum at the latest.
  std::string flipped = *zstd_compress(text_like(100000, 11));
  flipped[flipped.size() / 2] ^= 0x5A;
  expect_data_loss(zstd_decompress(flipped).status(), "corrupt zstd data");
}

TEST_F(ZstdIo, RejectsEmptyInput) {
  expect_data_loss(zstd_decompress("").status(), "no zstd frame");
  const std::string file = path("empty.zst");
  write_raw(file, "");
  expect_data_loss(read_zst(file, 16).status(), "no zstd frame");
}

TEST_F(ZstdIo, MissingFileNamesThePath) {
  ZstdFileReader reader;
  const absl::Status status = reader.open(path("absent.zst"));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("absent.zst"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace bertforge
