// Helpers shared by the fuzz targets (tests/fuzz/fuzz_*.cpp):
//   FUZZ_CHECK(condition)  a property every input must keep (beyond "no crash"); a violation aborts, which
//                          libFuzzer reports as a crash with the input that caused it.
//   refused(status)        true when the parser refused the input; a refusal must carry a message.
//   FuzzInputFile          a per-process temporary file for entry points that only take a path: the target
//                          writes the input there and passes the path, so the tool's own code reads it.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/status/status.h"

#define FUZZ_CHECK(condition)                                                                        \
  do {                                                                                               \
    if (!(condition)) {                                                                              \
      std::fprintf(stderr, "%s:%d: fuzz property violated: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                                  \
    }                                                                                                \
  } while (0)

namespace bertforge::fuzz {

// Whether `status` is a refusal (checking that it says why): `if (fuzz::refused(x.status())) return 0;`.
inline bool refused(const absl::Status& status) {
  FUZZ_CHECK(status.ok() || !status.message().empty());
  return !status.ok();
}

// <temp dir>/bertforge-fuzz-<pid>/<file_name>, removed (with its directory) when the process ends normally.
// The temp dir is /dev/shm when there is one (memory: a disk-backed /tmp made the file targets 20x slower),
// else $TMPDIR or /tmp.
class FuzzInputFile {
 public:
  explicit FuzzInputFile(const std::string& file_name)
      : dir_(temp_root() / ("bertforge-fuzz-" + std::to_string(::getpid()))), path_(dir_ / file_name) {
    std::filesystem::create_directories(dir_);
  }
  ~FuzzInputFile() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  FuzzInputFile(const FuzzInputFile&) = delete;
  FuzzInputFile& operator=(const FuzzInputFile&) = delete;

  // Replaces the file's contents with the input; returns its path.
  std::string write(const uint8_t* data, size_t size) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    FUZZ_CHECK(out.good());
    return path_.string();
  }
  std::string directory() const { return dir_.string(); }

 private:
  static std::filesystem::path temp_root() {
    std::error_code error;
    if (std::filesystem::is_directory("/dev/shm", error) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
    return std::filesystem::temp_directory_path();
  }

  std::filesystem::path dir_;
  std::filesystem::path path_;
};

}  // namespace bertforge::fuzz
