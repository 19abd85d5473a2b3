// bert_embed's files: the sentence list, embeddings as .safetensors or .npy, the vocabulary (embedding_io.h).
#include "train/embedding_io.h"

#include <cstdint>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/check.h"
#include "core/file_io.h"
#include "core/safetensors.h"

namespace bertforge {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the embedding files are little-endian, copied byte for byte");

namespace {

namespace fs = std::filesystem;

constexpr const char* kSafetensorsName = "embeddings";
constexpr absl::string_view kNpyMagic("\x93NUMPY", 6);

bool is_npy(const std::string& path) { return absl::EndsWith(path, ".npy"); }

// ---- NPY ------------------------------------------------------------------------------------------------------

std::string npy_bytes(const Tensor& matrix) {
  std::string header = absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (", matrix.size(0), ", ",
                                    matrix.size(1), "), }");
  const size_t prefix = kNpyMagic.size() + 2 + 2;  // magic, version 1.0, uint16 header length
  const size_t padded = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(padded - prefix - header.size() - 1, ' ');
  header.push_back('\n');
  const uint16_t header_len = static_cast<uint16_t>(header.size());  // < 128 for any 2-D shape
  std::string bytes(kNpyMagic);
  bytes.push_back('\x01');
  bytes.push_back('\x00');
  bytes.append(reinterpret_cast<const char*>(&header_len), sizeof(header_len));
  bytes.append(header);
  bytes.append(static_cast<const char*>(matrix.raw_data()), static_cast<size_t>(matrix.nbytes()));
  return bytes;
}

// The text after "'key':" in a .npy header dict, spaces skipped; empty when the key is absent.
absl::string_view npy_header_value(absl::string_view header, absl::string_view key) {
  const std::string quoted = absl::StrCat("'", key, "':");
  const size_t at = header.find(quoted);
  if (at == absl::string_view::npos) return {};
  return absl::StripLeadingAsciiWhitespace(header.substr(at + quoted.size()));
}

absl::StatusOr<Tensor> parse_npy(const std::string& path, absl::string_view bytes) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a 2-D float32 .npy file: ", why));
  };
  if (!absl::StartsWith(bytes, kNpyMagic) || bytes.size() < kNpyMagic.size() + 4) return bad("no NPY magic");
  const uint8_t major = static_cast<uint8_t>(bytes[kNpyMagic.size()]);
  if (major < 1 || major > 3) return bad(absl::StrCat("unknown format version ", major));
  size_t header_start = kNpyMagic.size() + 2, header_len = 0;
  if (major == 1) {
    uint16_t len16;
    std::memcpy(&len16, bytes.data() + header_start, sizeof(len16));
    header_len = len16;
    header_start += sizeof(len16);
  } else {
    if (bytes.size() < header_start + 4) return bad("truncated header");
    uint32_t len32;
    std::memcpy(&len32, bytes.data() + header_start, sizeof(len32));
    header_len = len32;
    header_start += sizeof(len32);
  }
  if (header_start + header_len > bytes.size()) return bad("truncated header");
  const absl::string_view header = bytes.substr(header_start, header_len);

  const absl::string_view descr = npy_header_value(header, "descr");
  if (!absl::StartsWith(descr, "'<f4'")) {
    return bad(absl::StrCat("dtype ", descr.substr(0, descr.find(',')), " (little-endian float32, '<f4', expected)"));
  }
  if (!absl::StartsWith(npy_header_value(header, "fortran_order"), "False")) return bad("Fortran order");
  const absl::string_view shape_text = npy_header_value(header, "shape");
  const size_t close = shape_text.find(')');
  if (!absl::StartsWith(shape_text, "(") || close == absl::string_view::npos) return bad("no shape");
  std::vector<int64_t> shape;
  for (absl::string_view dim : absl::StrSplit(shape_text.substr(1, close - 1), ',', absl::SkipWhitespace())) {
    int64_t size;
    if (!absl::SimpleAtoi(dim, &size) || size < 0) return bad(absl::StrCat("shape ", shape_text.substr(0, close + 1)));
    shape.push_back(size);
  }
  if (shape.size() != 2) return bad(absl::StrCat("shape ", shape_text.substr(0, close + 1), " is not 2-D"));

  const absl::string_view data = bytes.substr(header_start + header_len);
  Tensor matrix = Tensor::empty({shape[0], shape[1]});
  if (static_cast<int64_t>(data.size()) != matrix.nbytes()) {
    return bad(absl::StrCat(data.size(), " data bytes for shape (", shape[0], ", ", shape[1], "), ",
                            matrix.nbytes(), " expected"));
  }
  std::memcpy(matrix.raw_data(), data.data(), data.size());
  return matrix;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> read_sentences(const std::string& path) {
  if (fs::is_directory(path)) return absl::InvalidArgumentError(absl::StrCat(path, " is a directory, not a file"));
  BF_ASSIGN_OR_RETURN(const std::string text, read_file(path));
  std::vector<std::string> sentences = absl::StrSplit(text, '\n');
  if (!sentences.empty() && sentences.back().empty()) sentences.pop_back();  // the final "\n"
  int64_t empty_lines = 0, first_empty = 0;
  for (size_t i = 0; i < sentences.size(); ++i) {
    if (absl::EndsWith(sentences[i], "\r")) sentences[i].pop_back();
    if (absl::StripAsciiWhitespace(sentences[i]).empty()) {
      if (empty_lines++ == 0) first_empty = static_cast<int64_t>(i) + 1;
    }
  }
  if (sentences.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " holds no sentences"));
  if (empty_lines > 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": line ", first_empty, " is empty (", empty_lines,
                                                   empty_lines == 1 ? " empty line" : " empty lines",
                                                   " in all); every line must hold a sentence, since row i of the "
                                                   "embeddings is line i + 1"));
  }
  return sentences;
}

absl::Status check_embedding_extension(const std::string& path) {
  if (is_npy(path) || absl::EndsWith(path, ".safetensors")) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown embedding file extension in ", path, ": use .safetensors or .npy"));
}

absl::Status write_embeddings(const std::string& path, const Tensor& embeddings) {
  BF_RETURN_IF_ERROR(check_embedding_extension(path));
  BF_CHECK(embeddings.dim() == 2 && embeddings.dtype() == DType::kF32, "write_embeddings: ", embeddings.str(),
           " is not an F32 (N,D) matrix");
  if (!is_npy(path)) return write_safetensors(path, {{kSafetensorsName, embeddings}});
  return write_file_atomic(path, npy_bytes(embeddings.to(Device::cpu()).contiguous()));
}

absl::StatusOr<Tensor> read_embeddings(const std::string& path) {
  BF_RETURN_IF_ERROR(check_embedding_extension(path));
  if (is_npy(path)) {
    BF_ASSIGN_OR_RETURN(const std::string bytes, read_file(path));
    return parse_npy(path, bytes);
  }
  BF_ASSIGN_OR_RETURN(const SafetensorsFile file, read_safetensors(path));
  const Tensor* embeddings = file.find(kSafetensorsName);
  if (embeddings == nullptr || embeddings->dim() != 2 || embeddings->dtype() != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no F32 (N,D) tensor \"", kSafetensorsName, "\" (what bert_embed writes)"));
  }
  return *embeddings;
}

absl::StatusOr<std::string> resolve_vocab_path(const CheckpointPaths& paths, const std::string& explicit_vocab) {
  if (!explicit_vocab.empty()) return explicit_vocab;
  std::vector<std::string> candidates;
  for (const std::string& config : paths.configs) {
    candidates.push_back((fs::path(config).parent_path() / "vocab.txt").string());
    if (fs::exists(candidates.back())) return candidates.back();
  }
  return absl::NotFoundError(absl::StrCat("no vocab.txt for ", paths.weights, " (looked at ",
                                          absl::StrJoin(candidates, ", "), "); give --vocab"));
}

}  // namespace bertforge
