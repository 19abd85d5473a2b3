// zstd compression in memory and as file streams (token shards are zstd files).
//
// Built on libzstd's streaming API, so frames without a recorded content size
// (what streaming compressors write) and several concatenated frames (what
// `cat a.zst b.zst` gives) decode like one stream. Input that ends inside a
// frame is reported as truncated (absl::DataLossError), bytes that are not
// zstd as corrupt; an empty input holds no frame and is an error too.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/file_io.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace bertforge {

absl::StatusOr<std::string> zstd_compress(absl::string_view bytes, int level = 3);
absl::StatusOr<std::string> zstd_decompress(absl::string_view compressed);

// Compresses a stream of bytes into one zstd frame written atomically to
// `path`: nothing appears at `path` until close() succeeds. Move-only.
class ZstdFileWriter {
 public:
  ZstdFileWriter() = default;
  ~ZstdFileWriter();  // without close(), the partial file is discarded
  ZstdFileWriter(ZstdFileWriter&& other) noexcept;
  ZstdFileWriter& operator=(ZstdFileWriter&& other) noexcept;
  ZstdFileWriter(const ZstdFileWriter&) = delete;
  ZstdFileWriter& operator=(const ZstdFileWriter&) = delete;

  absl::Status open(const std::string& path, int level = 3);
  absl::Status write(absl::string_view bytes);
  absl::Status write(const void* data, size_t n) {
    return write(absl::string_view(static_cast<const char*>(data), n));
  }
  // Ends the frame and commits the file.
  absl::Status close();

 private:
  // Feeds `input` to the compressor (ending the frame if `end_frame`) and
  // writes all output it produces; on failure the writer is reset.
  absl::Status compress_and_write(absl::string_view input, bool end_frame);
  void reset();

  ZSTD_CCtx_s* cctx_ = nullptr;
  AtomicFileWriter file_;
  std::string out_buffer_;
};

// Decompresses a zstd file piece by piece. Move-only.
class ZstdFileReader {
 public:
  ZstdFileReader() = default;
  ~ZstdFileReader();
  ZstdFileReader(ZstdFileReader&& other) noexcept;
  ZstdFileReader& operator=(ZstdFileReader&& other) noexcept;
  ZstdFileReader(const ZstdFileReader&) = delete;
  ZstdFileReader& operator=(const ZstdFileReader&) = delete;

  absl::Status open(const std::string& path);
  // Up to n decompressed bytes into `dst`; 0 only at the end of the stream
  // (or when n is 0).
  // An error if the file ends inside a frame or holds bytes that are not zstd.
  absl::StatusOr<size_t> read(void* dst, size_t n);

 private:
  void reset();

  ZSTD_DCtx_s* dctx_ = nullptr;
  FileReader file_;
  std::string in_buffer_;
  size_t in_pos_ = 0, in_size_ = 0;  // unread compressed bytes are in_buffer_[in_pos_, in_size_)
  bool file_done_ = false;           // the file has no more bytes
  bool frame_complete_ = true;       // the last frame started was decoded to its end
  bool saw_input_ = false;           // the file held at least one byte
};

}  // namespace bertforge
