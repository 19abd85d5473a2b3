// Tests for whole-file reads, atomic writes, FileReader and AtomicFileWriter.
#include "core/file_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace bertforge {
namespace {

namespace fs = std::filesystem;
using test_support::TempDirTest;

// Each test gets a fresh empty directory dir_, removed afterwards.
class FileIo : public TempDirTest {
 protected:
  FileIo() : TempDirTest("file_io") {}

  std::vector<std::string> list_dir() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string binary_pattern(size_t n) {
  std::string bytes(n, '\0');
  for (size_t k = 0; k < n; ++k) bytes[k] = static_cast<char>((k * 131 + k / 7) & 0xFF);
  return bytes;
}

TEST_F(FileIo, RoundTrip) {
  const std::string path = dir_ + "/data.bin";
  const std::string bytes = binary_pattern(100000);
  ASSERT_TRUE(write_file_atomic(path, bytes).ok());
  absl::StatusOr<std::string> back = read_file(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, bytes);
  EXPECT_EQ(list_dir(), std::vector<std::string>{"data.bin"});  // no temporary left behind
}

TEST_F(FileIo, EmptyFileRoundTrip) {
  const std::string path = dir_ + "/empty";
  ASSERT_TRUE(write_file_atomic(path, "").ok());
  absl::StatusOr<std::string> back = read_file(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, "");
}

TEST_F(FileIo, OverwriteReplacesTheWholeFile) {
  const std::string path = dir_ + "/f.txt";
  ASSERT_TRUE(write_file_atomic(path, "a much longer first version").ok());
  ASSERT_TRUE(write_file_atomic(path, "short").ok());
  EXPECT_EQ(*read_file(path), "short");
}

TEST_F(FileIo, BareFileNameWritesInTheCurrentDirectory) {
  char saved[4096];
  ASSERT_NE(getcwd(saved, sizeof(saved)), nullptr);
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  const absl::Status status = write_file_atomic("bare.txt", "x");
  ASSERT_EQ(chdir(saved), 0);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(*read_file(dir_ + "/bare.txt"), "x");
}

TEST_F(FileIo, ReadMissingFileNamesThePath) {
  const std::string path = dir_ + "/does_not_exist";
  absl::StatusOr<std::string> result = read_file(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(result.status().message().find(path), absl::string_view::npos) << result.status();
  EXPECT_NE(result.status().message().find("No such file"), absl::string_view::npos) << result.status();
}

TEST_F(FileIo, ReadDirectoryFails) {
  absl::StatusOr<std::string> result = read_file(dir_);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("not a regular file"), absl::string_view::npos) << result.status();
}

TEST_F(FileIo, WriteIntoMissingDirectoryFailsCleanly) {
  const std::string path = dir_ + "/no_such_dir/out.bin";
  const absl::Status status = write_file_atomic(path, "payload");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("No such file"), absl::string_view::npos) << status;
  EXPECT_TRUE(list_dir().empty());
}

TEST_F(FileIo, AbandonedWriterLeavesNothingAndKeepsTheOldFile) {
  const std::string path = dir_ + "/ckpt";
  ASSERT_TRUE(write_file_atomic(path, "old").ok());
  {
    AtomicFileWriter writer;
    ASSERT_TRUE(writer.open(path).ok());
    ASSERT_TRUE(writer.write("new but never committed").ok());
    EXPECT_EQ(list_dir().size(), 2u);  // the temporary exists while writing
  }
  EXPECT_EQ(list_dir(), std::vector<std::string>{"ckpt"});
  EXPECT_EQ(*read_file(path), "old");
}

TEST_F(FileIo, StreamingWriterAndReader) {
  const std::string path = dir_ + "/stream";
  const std::string bytes = binary_pattern(300000);
  AtomicFileWriter writer;
  ASSERT_TRUE(writer.open(path).ok());
  for (size_t k = 0; k < bytes.size(); k += 7777) {
    ASSERT_TRUE(writer.write(absl::string_view(bytes).substr(k, 7777)).ok());
  }
  AtomicFileWriter moved = std::move(writer);  // ownership of the temporary moves too
  ASSERT_TRUE(moved.commit().ok());

  FileReader reader;
  ASSERT_TRUE(reader.open(path).ok());
  EXPECT_EQ(reader.size(), bytes.size());
  std::string back;
  char buffer[4096];
  while (true) {
    absl::StatusOr<size_t> got = reader.read(buffer, sizeof(buffer));
    ASSERT_TRUE(got.ok()) << got.status();
    if (*got == 0) break;
    back.append(buffer, *got);
  }
  EXPECT_EQ(back, bytes);

  char slice[10];
  ASSERT_TRUE(reader.read_at(1000, slice, 10).ok());
  EXPECT_EQ(std::string(slice, 10), bytes.substr(1000, 10));
  const absl::Status past_end = reader.read_at(bytes.size() - 5, slice, 10);
  EXPECT_EQ(past_end.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(past_end.message().find(path), absl::string_view::npos) << past_end;
}

}  // namespace
}  // namespace bertforge
