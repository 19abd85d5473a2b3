// Token shard writing and reading (the format is described in token_shard.h).
#include "train/token_shard.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/check.h"
#include "core/zstd_io.h"

namespace bertforge {
namespace {

// ---- Little-endian encoding ---------------------------------------------------------------

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int k = 0; k < bytes; ++k) out.push_back(static_cast<char>(value >> (8 * k)));
}

uint64_t get_le(const unsigned char* in, int bytes) {
  uint64_t value = 0;
  for (int k = 0; k < bytes; ++k) value |= static_cast<uint64_t>(in[k]) << (8 * k);
  return value;
}

// Values are encoded and decoded in pieces of this many, so neither side holds
// a second full-size copy of the tokens as bytes.
constexpr size_t kPieceValues = 1 << 16;

// ---- Reading ------------------------------------------------------------------------------

// Reads up to n decompressed bytes, fewer only where the stream ends.
absl::StatusOr<size_t> read_up_to(ZstdFileReader& reader, void* dst, size_t n) {
  size_t done = 0;
  while (done < n) {
    BF_ASSIGN_OR_RETURN(size_t got, reader.read(static_cast<char*>(dst) + done, n - done));
    if (got == 0) break;
    done += got;
  }
  return done;
}

// Reads `count` little-endian values of `bytes` bytes each through `take(value, index)`,
// piece by piece, so a corrupt header announcing a huge count fails at the end
// of the real data instead of allocating for the count up front.
template <typename Take>
absl::Status read_values(ZstdFileReader& reader, const std::string& path, uint64_t count, int bytes,
                         absl::string_view what, Take take) {
  std::vector<unsigned char> piece;
  for (uint64_t first = 0; first < count;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(count - first, kPieceValues));
    piece.resize(n * bytes);
    BF_ASSIGN_OR_RETURN(size_t got, read_up_to(reader, piece.data(), piece.size()));
    if (got < piece.size()) {
      return absl::DataLossError(absl::StrCat(path, ": token shard is truncated: the stream ends after ",
                                              first + got / bytes, " of the ", count, " ", what,
                                              " its header announces"));
    }
    for (size_t k = 0; k < n; ++k) BF_RETURN_IF_ERROR(take(get_le(piece.data() + k * bytes, bytes), first + k));
    first += n;
  }
  return absl::OkStatus();
}

// ---- Writing ------------------------------------------------------------------------------

// ShardWriter::add_document for either id type: checks every id, then appends the document.
template <typename Id>
absl::Status add_document_impl(const std::string& path, bool open, TokenShard& shard, absl::Span<const Id> ids) {
  if (!open) return absl::FailedPreconditionError("ShardWriter::add_document before a successful open()");
  if (ids.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": document ", shard.document_count(), " has ", ids.size(),
                                                   " tokens; a shard stores lengths as u32"));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= static_cast<int64_t>(shard.vocab_size)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": token id ", ids[i], " at position ", i, " of document ",
                                                     shard.document_count(), " is outside the vocabulary [0, ",
                                                     shard.vocab_size, ")"));
    }
  }
  shard.tokens.insert(shard.tokens.end(), ids.begin(), ids.end());
  shard.document_offsets.push_back(shard.tokens.size());
  return absl::OkStatus();
}

}  // namespace

// ---- ShardWriter ----------------------------------------------------------------------------

absl::Status ShardWriter::open(const std::string& path, uint32_t vocab_size) {
  if (vocab_size == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": token shard vocab_size must be >= 1"));
  path_ = path;
  shard_ = TokenShard{};
  shard_.vocab_size = vocab_size;
  open_ = true;
  return absl::OkStatus();
}

absl::Status ShardWriter::add_document(absl::Span<const uint32_t> ids) {
  return add_document_impl(path_, open_, shard_, ids);
}

absl::Status ShardWriter::add_document(absl::Span<const int32_t> ids) {
  return add_document_impl(path_, open_, shard_, ids);
}

absl::Status ShardWriter::close() {
  if (!open_) return absl::FailedPreconditionError("ShardWriter::close before a successful open()");
  open_ = false;
  const TokenShard shard = std::move(shard_);
  shard_ = TokenShard{};
  const int id_bytes = static_cast<int>(token_shard_id_bytes(shard.vocab_size));

  ZstdFileWriter file;
  BF_RETURN_IF_ERROR(file.open(path_));
  std::string bytes(kTokenShardMagic, sizeof(kTokenShardMagic));
  put_le(bytes, kTokenShardVersion, 4);
  put_le(bytes, shard.vocab_size, 4);
  put_le(bytes, id_bytes, 4);
  put_le(bytes, shard.tokens.size(), 8);
  put_le(bytes, shard.document_count(), 8);
  BF_RETURN_IF_ERROR(file.write(bytes));

  // Lengths, then ids, each encoded a piece at a time.
  auto write_values = [&](uint64_t count, int width, auto value_at) -> absl::Status {
    for (uint64_t first = 0; first < count; first += kPieceValues) {
      const uint64_t end = std::min<uint64_t>(count, first + kPieceValues);
      bytes.clear();
      for (uint64_t k = first; k < end; ++k) put_le(bytes, value_at(k), width);
      BF_RETURN_IF_ERROR(file.write(bytes));
    }
    return absl::OkStatus();
  };
  BF_RETURN_IF_ERROR(write_values(shard.document_count(), 4, [&](uint64_t d) {
    return shard.document_offsets[d + 1] - shard.document_offsets[d];
  }));
  BF_RETURN_IF_ERROR(write_values(shard.tokens.size(), id_bytes, [&](uint64_t i) { return shard.tokens[i]; }));
  return file.close();
}

// ---- read_shard -----------------------------------------------------------------------------

absl::StatusOr<TokenShard> read_shard(const std::string& path, uint32_t expected_vocab_size) {
  ZstdFileReader reader;
  BF_RETURN_IF_ERROR(reader.open(path));

  unsigned char header[kTokenShardHeaderBytes];
  BF_ASSIGN_OR_RETURN(size_t header_got, read_up_to(reader, header, sizeof(header)));
  if (std::memcmp(header, kTokenShardMagic, std::min(header_got, sizeof(kTokenShardMagic))) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": not a token shard (bad magic; expected \"",
                                            absl::string_view(kTokenShardMagic, 8), "\")"));
  }
  if (header_got < sizeof(header)) {
    return absl::DataLossError(absl::StrCat(path, ": token shard is truncated: ", header_got,
                                            " bytes, shorter than the ", sizeof(header), "-byte header"));
  }
  const uint64_t version = get_le(header + 8, 4);
  if (version != kTokenShardVersion) {
    return absl::DataLossError(absl::StrCat(path, ": unsupported token shard version ", version,
                                            " (this build reads version ", kTokenShardVersion, ")"));
  }
  TokenShard shard;
  shard.vocab_size = static_cast<uint32_t>(get_le(header + 12, 4));
  const uint64_t id_bytes = get_le(header + 16, 4);
  const uint64_t token_count = get_le(header + 20, 8);
  const uint64_t document_count = get_le(header + 28, 8);
  if (shard.vocab_size == 0 || id_bytes != token_shard_id_bytes(shard.vocab_size)) {
    return absl::DataLossError(absl::StrCat(path, ": corrupt token shard header: vocab_size ", shard.vocab_size,
                                            " with ", id_bytes, "-byte ids"));
  }
  if (expected_vocab_size != 0 && shard.vocab_size != expected_vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": token shard has vocab_size ", shard.vocab_size,
                                                   ", expected ", expected_vocab_size));
  }

  BF_RETURN_IF_ERROR(read_values(reader, path, document_count, 4, "document lengths",
                                 [&](uint64_t length, uint64_t) {
                                   shard.document_offsets.push_back(shard.document_offsets.back() + length);
                                   return absl::OkStatus();
                                 }));
  if (shard.document_offsets.back() != token_count) {
    return absl::DataLossError(absl::StrCat(path, ": token shard is inconsistent: its ", document_count,
                                            " document lengths sum to ", shard.document_offsets.back(),
                                            " tokens but the header says ", token_count));
  }

  BF_RETURN_IF_ERROR(read_values(reader, path, token_count, static_cast<int>(id_bytes), "token ids",
                                 [&](uint64_t id, uint64_t index) {
                                   if (id >= shard.vocab_size) {
                                     return absl::DataLossError(absl::StrCat(
                                         path, ": token id ", id, " at index ", index,
                                         " is outside the vocabulary [0, ", shard.vocab_size, ")"));
                                   }
                                   shard.tokens.push_back(static_cast<uint32_t>(id));
                                   return absl::OkStatus();
                                 }));

  // The stream must end here; reading on also makes zstd confirm the frame is complete.
  char extra;
  BF_ASSIGN_OR_RETURN(size_t got, reader.read(&extra, 1));
  if (got != 0) {
    return absl::DataLossError(absl::StrCat(path, ": token shard holds more data than the ", token_count,
                                            " tokens its header announces"));
  }
  return shard;
}

}  // namespace bertforge
