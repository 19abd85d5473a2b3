// zstd compression in memory and over files, on libzstd's streaming API.
//
// One subtlety of ZSTD_decompressStream: its return value is 0 exactly when a
// frame has just been decoded and flushed, but a call that gets no new input
// and produces no output may return a non-zero "next input size" hint even
// between frames. So whether the stream stopped inside a frame is judged from
// the last call that made progress.
#include "core/zstd_io.h"

#include <zstd.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace bertforge {
namespace {

using CompressorPtr = std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)>;
using DecompressorPtr = std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)>;

// A compression context with `level` and a checksum in every frame (so
// corruption is detected on reading, not only malformed frames).
absl::StatusOr<CompressorPtr> make_compressor(int level) {
  if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
    return absl::InvalidArgumentError(absl::StrCat("zstd compression level ", level, " is outside [",
                                                   ZSTD_minCLevel(), ", ", ZSTD_maxCLevel(), "]"));
  }
  CompressorPtr cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  BF_CHECK(cctx != nullptr, "ZSTD_createCCtx failed (out of memory)");
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  return cctx;
}

absl::Status corrupt(absl::string_view where, size_t zstd_code) {
  return absl::DataLossError(absl::StrCat(where, ": corrupt zstd data (", ZSTD_getErrorName(zstd_code), ")"));
}

}  // namespace

// ---- In memory ----------------------------------------------------------------------------

absl::StatusOr<std::string> zstd_compress(absl::string_view bytes, int level) {
  BF_ASSIGN_OR_RETURN(CompressorPtr cctx, make_compressor(level));
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  ZSTD_outBuffer output{out.data(), out.size(), 0};
  // With room for the compress bound, one call normally finishes the frame.
  size_t remaining = 0;
  do {
    remaining = ZSTD_compressStream2(cctx.get(), &output, &in, ZSTD_e_end);
  } while (!ZSTD_isError(remaining) && remaining != 0 && output.pos < output.size);
  if (ZSTD_isError(remaining) || remaining != 0) {
    return absl::InternalError(absl::StrCat("zstd_compress failed: ", ZSTD_isError(remaining)
                                                                         ? ZSTD_getErrorName(remaining)
                                                                         : "output exceeded the compress bound"));
  }
  out.resize(output.pos);
  return out;
}

absl::StatusOr<std::string> zstd_decompress(absl::string_view compressed) {
  if (compressed.empty()) return absl::DataLossError("zstd_decompress: empty input holds no zstd frame");
  DecompressorPtr dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  BF_CHECK(dctx != nullptr, "ZSTD_createDCtx failed (out of memory)");
  const size_t chunk = ZSTD_DStreamOutSize();
  std::string out;
  size_t produced = 0;
  bool frame_complete = false;
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  while (true) {
    out.resize(produced + chunk);
    ZSTD_outBuffer output{out.data() + produced, chunk, 0};
    const size_t in_before = in.pos;
    const size_t ret = ZSTD_decompressStream(dctx.get(), &output, &in);
    if (ZSTD_isError(ret)) return corrupt("zstd_decompress", ret);
    produced += output.pos;
    if (in.pos > in_before || output.pos > 0) frame_complete = ret == 0;
    // Done when all input is consumed and the decoder had nothing more to flush.
    if (in.pos == in.size && output.pos < output.size) break;
  }
  if (!frame_complete) {
    return absl::DataLossError("zstd_decompress: truncated input (it ends inside a zstd frame)");
  }
  out.resize(produced);
  return out;
}

// ---- ZstdFileWriter ----------------------------------------------------------------------

ZstdFileWriter::~ZstdFileWriter() { reset(); }

ZstdFileWriter::ZstdFileWriter(ZstdFileWriter&& other) noexcept
    : cctx_(std::exchange(other.cctx_, nullptr)),
      file_(std::move(other.file_)),
      out_buffer_(std::move(other.out_buffer_)) {}

ZstdFileWriter& ZstdFileWriter::operator=(ZstdFileWriter&& other) noexcept {
  if (this != &other) {
    reset();
    cctx_ = std::exchange(other.cctx_, nullptr);
    file_ = std::move(other.file_);
    out_buffer_ = std::move(other.out_buffer_);
  }
  return *this;
}

void ZstdFileWriter::reset() {
  ZSTD_freeCCtx(cctx_);
  cctx_ = nullptr;
  file_.abort();
}

absl::Status ZstdFileWriter::open(const std::string& path, int level) {
  reset();
  BF_ASSIGN_OR_RETURN(CompressorPtr cctx, make_compressor(level));
  cctx_ = cctx.release();
  absl::Status opened = file_.open(path);
  if (!opened.ok()) {
    reset();
    return opened;
  }
  out_buffer_.resize(ZSTD_CStreamOutSize());
  return absl::OkStatus();
}

absl::Status ZstdFileWriter::compress_and_write(absl::string_view input, bool end_frame) {
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  while (true) {
    ZSTD_outBuffer output{out_buffer_.data(), out_buffer_.size(), 0};
    const size_t remaining = ZSTD_compressStream2(cctx_, &output, &in, end_frame ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(remaining)) {
      absl::Status error = absl::InternalError(
          absl::StrCat("zstd compression of ", file_.path(), " failed: ", ZSTD_getErrorName(remaining)));
      reset();
      return error;
    }
    absl::Status written = file_.write(out_buffer_.data(), output.pos);
    if (!written.ok()) {
      reset();
      return written;
    }
    if (end_frame ? remaining == 0 : in.pos == in.size) return absl::OkStatus();
  }
}

absl::Status ZstdFileWriter::write(absl::string_view bytes) {
  BF_CHECK(cctx_ != nullptr, "ZstdFileWriter::write before open() or after close()");
  return compress_and_write(bytes, /*end_frame=*/false);
}

absl::Status ZstdFileWriter::close() {
  BF_CHECK(cctx_ != nullptr, "ZstdFileWriter::close before open() or after close()");
  BF_RETURN_IF_ERROR(compress_and_write({}, /*end_frame=*/true));
  absl::Status committed = file_.commit();
  reset();
  return committed;
}

// ---- ZstdFileReader ----------------------------------------------------------------------

ZstdFileReader::~ZstdFileReader() { reset(); }

ZstdFileReader::ZstdFileReader(ZstdFileReader&& other) noexcept
    : dctx_(std::exchange(other.dctx_, nullptr)),
      file_(std::move(other.file_)),
      in_buffer_(std::move(other.in_buffer_)),
      in_pos_(other.in_pos_),
      in_size_(other.in_size_),
      file_done_(other.file_done_),
      frame_complete_(other.frame_complete_),
      saw_input_(other.saw_input_) {}

ZstdFileReader& ZstdFileReader::operator=(ZstdFileReader&& other) noexcept {
  if (this != &other) {
    reset();
    dctx_ = std::exchange(other.dctx_, nullptr);
    file_ = std::move(other.file_);
    in_buffer_ = std::move(other.in_buffer_);
    in_pos_ = other.in_pos_;
    in_size_ = other.in_size_;
    file_done_ = other.file_done_;
    frame_complete_ = other.frame_complete_;
    saw_input_ = other.saw_input_;
  }
  return *this;
}

void ZstdFileReader::reset() {
  ZSTD_freeDCtx(dctx_);
  dctx_ = nullptr;
}

absl::Status ZstdFileReader::open(const std::string& path) {
  reset();
  BF_RETURN_IF_ERROR(file_.open(path));
  dctx_ = ZSTD_createDCtx();
  BF_CHECK(dctx_ != nullptr, "ZSTD_createDCtx failed (out of memory)");
  in_buffer_.resize(ZSTD_DStreamInSize());
  in_pos_ = in_size_ = 0;
  file_done_ = false;
  frame_complete_ = true;
  saw_input_ = false;
  return absl::OkStatus();
}

absl::StatusOr<size_t> ZstdFileReader::read(void* dst, size_t n) {
  BF_CHECK(dctx_ != nullptr, "ZstdFileReader::read before a successful open()");
  ZSTD_outBuffer output{dst, n, 0};
  while (output.pos == 0 && n > 0) {
    if (in_pos_ == in_size_ && !file_done_) {
      BF_ASSIGN_OR_RETURN(in_size_, file_.read(in_buffer_.data(), in_buffer_.size()));
      in_pos_ = 0;
      file_done_ = in_size_ == 0;
      saw_input_ = saw_input_ || in_size_ > 0;
    }
    ZSTD_inBuffer in{in_buffer_.data(), in_size_, in_pos_};
    const size_t ret = ZSTD_decompressStream(dctx_, &output, &in);
    if (ZSTD_isError(ret)) return corrupt(file_.path(), ret);
    const bool progressed = in.pos > in_pos_ || output.pos > 0;
    in_pos_ = in.pos;
    if (progressed) frame_complete_ = ret == 0;
    if (file_done_ && !progressed) {  // no input left and nothing buffered in the decoder
      if (!saw_input_) return absl::DataLossError(absl::StrCat(file_.path(), ": empty file holds no zstd frame"));
      if (!frame_complete_) {
        return absl::DataLossError(absl::StrCat(file_.path(), ": truncated zstd file (it ends inside a frame)"));
      }
      return size_t{0};
    }
  }
  return output.pos;
}

}  // namespace bertforge
