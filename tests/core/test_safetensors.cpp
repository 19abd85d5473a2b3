// Tests for the safetensors reader and writer: round trips of every dtype,
// byte-exact agreement with the reference serializer, and one crafted file per
// kind of corruption the reader must reject.
#include "core/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/json.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

namespace fs = std::filesystem;
using test_support::TempDirTest;

std::string u64_le(uint64_t v) {
  std::string bytes(8, '\0');
  for (int k = 0; k < 8; ++k) bytes[k] = static_cast<char>(v >> (8 * k));
  return bytes;
}

std::string bytes_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), static_cast<size_t>(c.nbytes()));
}

// Each test gets a fresh directory dir_ (removed afterwards) and helpers to write
// and read files in it.
class Safetensors : public TempDirTest {
 protected:
  Safetensors() : TempDirTest("safetensors") {}

  // A file of: header length, header text, data bytes.
  std::string craft(const std::string& header, const std::string& data) {
    const std::string p = path("crafted.safetensors");
    EXPECT_TRUE(write_file_atomic(p, u64_le(header.size()) + header + data).ok());
    return p;
  }

  // Reading `file` fails with `code` and a message naming the file and containing `fragment`.
  void expect_error(const std::string& file, absl::StatusCode code, const std::string& fragment) {
    absl::StatusOr<SafetensorsFile> result = read_safetensors(file);
    ASSERT_FALSE(result.ok()) << "accepted " << file;
    EXPECT_EQ(result.status().code(), code) << result.status();
    EXPECT_NE(result.status().message().find(file), absl::string_view::npos) << result.status();
    EXPECT_NE(result.status().message().find(fragment), absl::string_view::npos)
        << "\"" << result.status().message() << "\" lacks \"" << fragment << "\"";
    // The in-memory reader refuses the same bytes with the same status.
    if (absl::StatusOr<std::string> bytes = read_file(file); bytes.ok()) {
      EXPECT_EQ(parse_safetensors(*bytes, file).status(), result.status());
    }
  }
  void expect_invalid(const std::string& header, const std::string& data, const std::string& fragment) {
    expect_error(craft(header, data), absl::StatusCode::kInvalidArgument, fragment);
  }
};

// ---- Round trips -----------------------------------------------------------------------------

TEST_F(Safetensors, EveryDtypeRoundTrips) {
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"i8", Tensor::from_vector<int8_t>({-128, -1, 0, 127, 5}, {5})},
      {"f32", Tensor::from_vector<float>({1.5f, -2.25f, 3e-38f, 1e30f, 0.0f, -0.0f}, {2, 3})},
      {"bf16", Tensor::from_vector<float>({1.0f, -3.5f, 65504.0f}, {3}).to(DType::kBF16)},
      {"u8", Tensor::from_vector<uint8_t>({0, 255, 17}, {3, 1})},
      {"f16", Tensor::from_vector<float>({0.5f, -1024.0f, 6.1e-5f}, {1, 3}).to(DType::kF16)},
      {"i64", Tensor::from_vector<int64_t>({int64_t{1} << 40, -1, 7}, {3})},
      {"i32", Tensor::from_vector<int32_t>({-2147483647, 2147483647}, {2})},
  };
  const std::string file = path("all.safetensors");
  ASSERT_TRUE(write_safetensors(file, tensors).ok());
  absl::StatusOr<SafetensorsFile> back = read_safetensors(file);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->tensors.size(), tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) {
    const auto& [name, t] = back->tensors[k];
    EXPECT_EQ(name, tensors[k].first);  // the caller's order
    EXPECT_EQ(t.dtype(), tensors[k].second.dtype()) << name;
    EXPECT_EQ(t.shape(), tensors[k].second.shape()) << name;
    EXPECT_EQ(bytes_of(t), bytes_of(tensors[k].second)) << name;
  }
  EXPECT_TRUE(back->metadata.empty());
  ASSERT_NE(back->find("bf16"), nullptr);
  EXPECT_EQ(back->find("bf16")->at({1}), -3.5f);
  EXPECT_EQ(back->find("nope"), nullptr);
}

// The data region is laid out by decreasing element size, so each tensor
// starts at a multiple of its element size; the header is padded to 8 bytes.
TEST_F(Safetensors, LayoutIsAligned) {
  const std::string file = path("aligned.safetensors");
  ASSERT_TRUE(write_safetensors(file, {{"a", Tensor::zeros({3}, DType::kU8)},
                                       {"b", Tensor::zeros({3}, DType::kF32)},
                                       {"c", Tensor::zeros({1}, DType::kF16)},
                                       {"d", Tensor::zeros({1}, DType::kI64)}})
                  .ok());
  const std::string bytes = *read_file(file);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  const Json header = *Json::parse(bytes.substr(8, header_size));
  for (const auto& [name, entry] : header.as_object()) {
    const int64_t begin = entry.get("data_offsets")->as_array()[0].as_int64();
    const int64_t size = dtype_size(*dtype_from_safetensors_name(entry.get("dtype")->as_string()));
    EXPECT_EQ(begin % size, 0) << name << " at " << begin;
  }
  EXPECT_EQ(header.as_object()[0].first, "a");  // header keeps the caller's order
}

TEST_F(Safetensors, NonContiguousInputIsWrittenRowMajor) {
  Tensor base = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  Tensor transposed = base.transpose(0, 1);      // (4, 3), strides (1, 4)
  Tensor sliced = base.slice(1, 1, 3);           // (3, 2), strides (4, 1), offset 1
  ASSERT_FALSE(transposed.is_contiguous());
  const std::string file = path("strided.safetensors");
  ASSERT_TRUE(write_safetensors(file, {{"t", transposed}, {"s", sliced}}).ok());
  absl::StatusOr<SafetensorsFile> back = read_safetensors(file);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->find("t")->shape(), (Shape{4, 3}));
  EXPECT_EQ(back->find("t")->to_float_vector(), transposed.to_float_vector());
  EXPECT_EQ(back->find("s")->to_float_vector(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
}

TEST_F(Safetensors, MetadataRoundTrips) {
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"scheme", R"({"bits": 8, "group": 128})"}, {"unicode", "\xC3\xA9t\xC3\xA9\n\"q\""}};
  const std::string file = path("meta.safetensors");
  ASSERT_TRUE(write_safetensors(file, {{"w", Tensor::ones({2})}}, metadata).ok());
  absl::StatusOr<SafetensorsFile> back = read_safetensors(file);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->metadata, metadata);
}

TEST_F(Safetensors, ParsesBytesInMemoryLikeTheFile) {
  const std::string file = path("memory.safetensors");
  ASSERT_TRUE(write_safetensors(file, {{"w", Tensor::ones({2, 3})}, {"i", Tensor::ones({4}, DType::kI64)}},
                                {{"format", "pt"}}).ok());
  absl::StatusOr<SafetensorsFile> parsed = parse_safetensors(*read_file(file), "memory");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->tensors.size(), 2u);
  EXPECT_EQ(parsed->tensors[0].first, "w");
  EXPECT_EQ(bytes_of(parsed->tensors[0].second), bytes_of(Tensor::ones({2, 3})));
  EXPECT_EQ(bytes_of(*parsed->find("i")), bytes_of(Tensor::ones({4}, DType::kI64)));
  EXPECT_EQ(parsed->metadata.at("format"), "pt");
}

TEST_F(Safetensors, EmptyTensorsAndScalars) {
  const std::string file = path("edge.safetensors");
  ASSERT_TRUE(write_safetensors(file, {{"empty", Tensor::zeros({0, 3})},
                                       {"scalar", Tensor::scalar(2.5f)},
                                       {"also_empty", Tensor::zeros({4, 0}, DType::kI64)},
                                       {"int_scalar", Tensor::full({}, 7.0f, DType::kI32)}})
                  .ok());
  absl::StatusOr<SafetensorsFile> back = read_safetensors(file);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->find("empty")->shape(), (Shape{0, 3}));
  EXPECT_EQ(back->find("also_empty")->shape(), (Shape{4, 0}));
  EXPECT_EQ(back->find("scalar")->dim(), 0);
  EXPECT_EQ(back->find("scalar")->item<float>(), 2.5f);
  EXPECT_EQ(back->find("int_scalar")->item<int32_t>(), 7);
}

// Byte-exact outputs of the reference serializer (huggingface/safetensors, tensor.rs tests).
TEST_F(Safetensors, MatchesReferenceSerializerBytes) {
  const std::string empty_file = path("empty.safetensors");
  ASSERT_TRUE(write_safetensors(empty_file, {}).ok());
  EXPECT_EQ(*read_file(empty_file), u64_le(8) + "{}      ");

  const std::string meta_file = path("meta_only.safetensors");
  ASSERT_TRUE(write_safetensors(meta_file, {}, {{"framework", "pt"}}).ok());
  EXPECT_EQ(*read_file(meta_file), u64_le(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");

  const std::string one_file = path("one.safetensors");
  Tensor attn = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {1, 2, 3});
  ASSERT_TRUE(write_safetensors(one_file, {{"attn.0", attn}}).ok());
  EXPECT_EQ(*read_file(one_file),
            u64_le(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" + bytes_of(attn));
}

TEST_F(Safetensors, OverwritesAtomically) {
  const std::string file = path("ckpt.safetensors");
  ASSERT_TRUE(write_safetensors(file, {{"a", Tensor::ones({1000})}}).ok());
  ASSERT_TRUE(write_safetensors(file, {{"b", Tensor::zeros({2})}}).ok());
  absl::StatusOr<SafetensorsFile> back = read_safetensors(file);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->tensors.size(), 1u);
  EXPECT_NE(back->find("b"), nullptr);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

// ---- Writer argument errors ------------------------------------------------------------------

TEST_F(Safetensors, WriterRejectsBadNames) {
  const std::string file = path("bad.safetensors");
  const Tensor t = Tensor::ones({1});
  absl::Status dup = write_safetensors(file, {{"a", t}, {"a", t}});
  EXPECT_EQ(dup.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dup.message().find("duplicate tensor name \"a\""), absl::string_view::npos) << dup;
  EXPECT_FALSE(write_safetensors(file, {{"__metadata__", t}}).ok());
  EXPECT_FALSE(write_safetensors(file, {{"", t}}).ok());
  EXPECT_FALSE(write_safetensors(file, {{"undefined", Tensor()}}).ok());
  EXPECT_FALSE(fs::exists(file));
}

TEST_F(Safetensors, WriteIntoMissingDirectoryFails) {
  const std::string file = path("missing_dir/x.safetensors");
  absl::Status status = write_safetensors(file, {{"a", Tensor::ones({1})}});
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(file), absl::string_view::npos) << status;
}

// ---- Corrupt files: one per check ----------------------------------------------------------------

const std::string kEightBytes(8, '\0');  // data for one F32 [2] tensor

TEST_F(Safetensors, RejectsMissingFile) {
  expect_error(path("absent.safetensors"), absl::StatusCode::kNotFound, "No such file");
}

TEST_F(Safetensors, RejectsFileShorterThanEightBytes) {
  const std::string file = path("short.safetensors");
  ASSERT_TRUE(write_file_atomic(file, "abc").ok());
  expect_error(file, absl::StatusCode::kDataLoss, "fewer than the 8-byte header length");
}

TEST_F(Safetensors, RejectsHeaderLengthPastEndOfFile) {
  const std::string file = path("long_header.safetensors");
  ASSERT_TRUE(write_file_atomic(file, u64_le(1000) + "{}").ok());
  expect_error(file, absl::StatusCode::kDataLoss, "runs past the end of the file");
}

TEST_F(Safetensors, RejectsAbsurdHeaderLength) {
  const std::string file = path("huge_header.safetensors");
  ASSERT_TRUE(write_file_atomic(file, u64_le(200'000'000) + "{}").ok());
  expect_error(file, absl::StatusCode::kInvalidArgument, "exceeds the limit");
  ASSERT_TRUE(write_file_atomic(file, u64_le(~uint64_t{0}) + "{}").ok());
  expect_error(file, absl::StatusCode::kInvalidArgument, "exceeds the limit");
}

TEST_F(Safetensors, RejectsHeaderThatIsNotJson) {
  expect_invalid("{\"a\": ", "", "header: JSON parse error");
  expect_invalid("{\"a\":\xff}", "", "header: JSON parse error");
}

TEST_F(Safetensors, RejectsHeaderThatIsNotAnObject) {
  expect_invalid("[1, 2]", "", "header is not a JSON object");
}

TEST_F(Safetensors, RejectsEntryMissingFields) {
  expect_invalid(R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", kEightBytes, "needs \"dtype\"");
  expect_invalid(R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", kEightBytes, "needs \"dtype\"");
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [2]}})", kEightBytes, "needs \"dtype\"");
}

TEST_F(Safetensors, RejectsEntryFieldsOfWrongType) {
  expect_invalid(R"({"w": 5})", kEightBytes, "tensor \"w\": entry is not a JSON object");
  expect_invalid(R"({"w": {"dtype": 1, "shape": [2], "data_offsets": [0, 8]}})", kEightBytes,
                 "\"dtype\" is not a string");
  expect_invalid(R"({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})", kEightBytes,
                 "\"shape\" must be a list of non-negative integers");
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", kEightBytes,
                 "\"shape\" must be a list of non-negative integers");
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", kEightBytes,
                 "\"data_offsets\" must be [begin, end]");
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": {"a": 0}}})", kEightBytes,
                 "\"data_offsets\" must be [begin, end]");
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, "8"]}})", kEightBytes,
                 "\"data_offsets\" must be [begin, end]");
}

TEST_F(Safetensors, RejectsUnknownDtype) {
  expect_invalid(R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", kEightBytes,
                 "unsupported dtype \"F64\"");
}

TEST_F(Safetensors, RejectsNegativeShape) {
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [-1, -2], "data_offsets": [0, 8]}})", kEightBytes,
                 "non-negative integers, got [-1,-2]");
}

TEST_F(Safetensors, RejectsOverflowingShape) {
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}})",
                 kEightBytes, "is too large");
}

// An empty tensor still has strides: [0, 2^40, 2^40] has numel 0 but a row stride of 2^80 (found by fuzzing,
// tests/fuzz/regressions/safetensors/empty_tensor_stride_overflow.safetensors).
TEST_F(Safetensors, RejectsEmptyShapeWhoseStridesOverflow) {
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [0, 1099511627776, 1099511627776], "data_offsets": [0, 0]}})",
                 "", "is too large");
}

TEST_F(Safetensors, RejectsEndBeforeBegin) {
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", kEightBytes,
                 "end before they begin");
}

TEST_F(Safetensors, RejectsOffsetsBeyondTheData) {
  expect_error(craft(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", kEightBytes),
               absl::StatusCode::kDataLoss, "tensor \"w\" ends at byte 16 of the data region, which holds only 8");
}

TEST_F(Safetensors, RejectsByteCountMismatch) {
  expect_invalid(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", kEightBytes,
                 "hold 8 bytes, but F32 [3] needs 12");
}

TEST_F(Safetensors, RejectsOverlappingTensors) {
  const std::string header = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                             R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  expect_invalid(header, std::string(12, '\0'), "tensor \"b\" at [4, 12) overlaps tensor \"a\"");
}

TEST_F(Safetensors, RejectsUnusedGap) {
  const std::string header = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                             R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})";
  expect_invalid(header, std::string(20, '\0'), "unused bytes [8, 12)");
}

TEST_F(Safetensors, RejectsTrailingBytes) {
  expect_invalid(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", std::string(12, '\0'),
                 "trailing bytes");
}

TEST_F(Safetensors, RejectsDuplicateNames) {
  const std::string header = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                             R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  expect_invalid(header, kEightBytes, "duplicate key \"a\"");
}

TEST_F(Safetensors, RejectsNonStringMetadata) {
  expect_invalid(R"({"__metadata__": {"step": 100}})", "", "\"__metadata__\" value of \"step\" is not a string");
  expect_invalid(R"({"__metadata__": ["x"]})", "", "\"__metadata__\" is not a JSON object");
}

TEST_F(Safetensors, RejectsTruncatedFile) {
  const std::string file = path("cut.safetensors");
  ASSERT_TRUE(write_safetensors(file, {{"a", Tensor::ones({4, 4})}, {"b", Tensor::ones({10}, DType::kI64)}}).ok());
  std::string bytes = *read_file(file);
  ASSERT_TRUE(write_file_atomic(file, bytes.substr(0, bytes.size() - 3)).ok());
  expect_error(file, absl::StatusCode::kDataLoss, "truncated safetensors file");
  // Cut inside the header too.
  ASSERT_TRUE(write_file_atomic(file, bytes.substr(0, 20)).ok());
  expect_error(file, absl::StatusCode::kDataLoss, "runs past the end of the file");
}

TEST_F(Safetensors, AcceptsPaddingAndUnknownEntryFields) {
  // Trailing spaces pad the header; extra fields in an entry are ignored, as the reference does.
  const std::string header = R"({"w": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8], "note": 1}}   )";
  absl::StatusOr<SafetensorsFile> back = read_safetensors(craft(header, std::string("\x01\0\0\0\x02\0\0\0", 8)));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->find("w")->to_float_vector(), (std::vector<float>{1, 2}));
}

}  // namespace
}  // namespace bertforge
