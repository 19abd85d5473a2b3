// Whole-file and streaming file I/O with errors that name the file, and
// crash-safe (atomic) writes.
//
// An atomic write never leaves a half-written file at `path`: bytes go to
// `path.tmp.<pid>` in the same directory, which is fsynced and then renamed
// over `path`, and the directory is fsynced so the rename itself survives a
// crash. Readers see either the old file or the complete new one.
// (Two threads of one process writing the same path at once would share the
// temporary name; don't do that.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bertforge {

// The whole file as bytes.
absl::StatusOr<std::string> read_file(const std::string& path);

// Replaces `path` atomically with `bytes`.
absl::Status write_file_atomic(const std::string& path, absl::string_view bytes);

// Reads a file in pieces: sequentially with read(), or at given positions
// with read_at(). Move-only; closes the file when destroyed.
class FileReader {
 public:
  FileReader() = default;
  ~FileReader();
  FileReader(FileReader&& other) noexcept;
  FileReader& operator=(FileReader&& other) noexcept;
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  absl::Status open(const std::string& path);
  const std::string& path() const { return path_; }
  // File size in bytes, as of open().
  uint64_t size() const { return size_; }
  // Up to n bytes from the current position; 0 at end of file.
  absl::StatusOr<size_t> read(void* dst, size_t n);
  // Exactly n bytes starting at byte `offset`; an error if the file ends first.
  absl::Status read_at(uint64_t offset, void* dst, size_t n);

 private:
  void close();
  int fd_ = -1;
  std::string path_;
  uint64_t size_ = 0;
};

// Writes a file atomically in pieces: open(), write() any number of times,
// then commit(). A writer destroyed (or abort()ed) before commit() removes its
// temporary file and leaves `path` untouched. Move-only.
class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();
  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Creates the temporary file next to `path`.
  absl::Status open(const std::string& path);
  const std::string& path() const { return path_; }
  absl::Status write(absl::string_view bytes);
  absl::Status write(const void* data, size_t n) {
    return write(absl::string_view(static_cast<const char*>(data), n));
  }
  // fsync, rename over `path`, fsync the directory. On failure the temporary
  // file is removed. The writer is closed afterwards either way.
  absl::Status commit();
  // Drops everything written so far (no-op if not open).
  void abort();

 private:
  int fd_ = -1;
  std::string path_;
  std::string temp_path_;
};

}  // namespace bertforge
