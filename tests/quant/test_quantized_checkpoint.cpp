// Tests for quant/quantized_checkpoint.h: a mixed FP / quantized state dict round-trips bit for bit, a plain FP
// checkpoint loads, and one crafted file per kind of corruption is rejected with a message naming the tensor and
// the problem (missing scales / qweight / zeros, extra zeros, wrong shapes, wrong dtypes, unknown scheme, scheme vs
// tensors mismatch, wrong logical shape, orphan tensors, bad metadata, codes / zero points / scales out of range,
// a non-zero padding nibble, a truncated file).
#include "quant/quantized_checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "tests/support/test_support.h"

namespace bertforge::quant {
namespace {

using test_support::random_tensor;
using test_support::TempDirTest;

std::string bytes_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), static_cast<size_t>(c.nbytes()));
}

constexpr const char* kQuery = "bert.encoder.layer.0.attention.self.query.weight";    // int8 symmetric per channel
constexpr const char* kFfn = "bert.encoder.layer.0.intermediate.dense.weight";        // int4 asymmetric per group, odd K
constexpr const char* kOut = "bert.encoder.layer.0.output.dense.weight";              // int3 symmetric per tensor

QuantizedStateDict sample_state() {
  QuantizedStateDict state;
  state.fp.emplace_back("bert.embeddings.word_embeddings.weight", random_tensor({10, 8}, 1));
  state.fp.emplace_back("bert.encoder.layer.0.attention.self.query.bias", random_tensor({8}, 2));
  state.fp.emplace_back("bert.embeddings.LayerNorm.weight", random_tensor({8}, 3).to(DType::kBF16));
  state.quantized.emplace_back(kQuery, quantize_weight(random_tensor({8, 8}, 4), int8_per_channel()));
  state.quantized.emplace_back(kFfn, quantize_weight(random_tensor({6, 13}, 5), int4_per_group(4)));
  state.quantized.emplace_back(kOut, quantize_weight(random_tensor({5, 7}, 6), {3, true, Granularity::kPerTensor, 1}));
  return state;
}

class QuantizedCheckpoint : public TempDirTest {
 protected:
  QuantizedCheckpoint() : TempDirTest("quantized_checkpoint") {}

  // Saves the sample, lets `mutate` edit the file's tensors and metadata, rewrites it, and expects loading to fail
  // with every fragment in the message.
  void expect_rejected(const std::function<void(SafetensorsFile&)>& mutate, const std::vector<std::string>& fragments) {
    const std::string p = path("ckpt.safetensors");
    ASSERT_TRUE(save_quantized_checkpoint(p, sample_state()).ok());
    absl::StatusOr<SafetensorsFile> file = read_safetensors(p);
    ASSERT_TRUE(file.ok()) << file.status();
    mutate(*file);
    ASSERT_TRUE(write_safetensors(p, file->tensors, file->metadata).ok());
    absl::StatusOr<QuantizedStateDict> loaded = load_quantized_checkpoint(p);
    ASSERT_FALSE(loaded.ok()) << "accepted a corrupted file; expected: " << fragments[0];
    const std::string message(loaded.status().message());
    for (const std::string& f : fragments) EXPECT_NE(message.find(f), std::string::npos) << message;
  }
};

void remove_tensor(SafetensorsFile& f, const std::string& name) {
  for (auto it = f.tensors.begin(); it != f.tensors.end(); ++it) {
    if (it->first == name) {
      f.tensors.erase(it);
      return;
    }
  }
  FAIL() << "no tensor " << name;
}
Tensor& tensor(SafetensorsFile& f, const std::string& name) {
  for (auto& [n, t] : f.tensors) {
    if (n == name) return t;
  }
  throw std::runtime_error("no tensor " + name);
}
// Edits the JSON metadata through `edit`.
void edit_metadata(SafetensorsFile& f, const std::function<void(Json&)>& edit) {
  Json meta = *Json::parse(f.metadata.at(kQuantMetadataKey));
  edit(meta);
  f.metadata[kQuantMetadataKey] = meta.dump();
}
// The entry of tensor `param` in the metadata, rebuilt with `key` set to `value`.
void set_entry_field(Json& meta, const std::string& param, const std::string& key, Json value) {
  Json tensors = *meta.get("tensors");
  Json entry = *tensors.get(param);
  entry.set(key, std::move(value));
  tensors.set(param, std::move(entry));
  meta.set("tensors", std::move(tensors));
}
Json scheme_json(const char* text) { return *Json::parse(text); }

TEST_F(QuantizedCheckpoint, RoundTripsBitForBit) {
  const QuantizedStateDict state = sample_state();
  const std::string p = path("ckpt.safetensors");
  ASSERT_TRUE(save_quantized_checkpoint(p, state).ok());
  absl::StatusOr<QuantizedStateDict> loaded = load_quantized_checkpoint(p);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->fp.size(), state.fp.size());
  for (const auto& [name, t] : state.fp) {
    const Tensor* got = loaded->find_fp(name);
    ASSERT_NE(got, nullptr) << name;
    EXPECT_EQ(got->dtype(), t.dtype());
    EXPECT_EQ(bytes_of(*got), bytes_of(t)) << name;
  }
  ASSERT_EQ(loaded->quantized.size(), state.quantized.size());
  for (const auto& [name, qw] : state.quantized) {
    const QuantizedWeight* got = loaded->find_quantized(name);
    ASSERT_NE(got, nullptr) << name;
    EXPECT_EQ(got->scheme, qw.scheme) << name;
    EXPECT_EQ(got->shape(), qw.shape()) << name;
    EXPECT_EQ(bytes_of(got->qweight), bytes_of(qw.qweight)) << name;
    EXPECT_EQ(bytes_of(got->scales), bytes_of(qw.scales)) << name;
    EXPECT_EQ(got->zeros.defined(), qw.zeros.defined()) << name;
    if (qw.zeros.defined()) {
      EXPECT_EQ(bytes_of(got->zeros), bytes_of(qw.zeros)) << name;
    }
    EXPECT_EQ(dequantize(*got).to_float_vector(), dequantize(qw).to_float_vector()) << name;
  }
  // The stored names follow the <name>.qweight / .scales / .zeros convention, next to the FP tensors.
  absl::StatusOr<SafetensorsFile> raw = read_safetensors(p);
  ASSERT_TRUE(raw.ok());
  EXPECT_NE(raw->find("bert.encoder.layer.0.attention.self.query.qweight"), nullptr);
  EXPECT_NE(raw->find("bert.encoder.layer.0.attention.self.query.scales"), nullptr);
  EXPECT_EQ(raw->find("bert.encoder.layer.0.attention.self.query.zeros"), nullptr);
  EXPECT_NE(raw->find("bert.encoder.layer.0.intermediate.dense.zeros"), nullptr);
  EXPECT_EQ(raw->metadata.at("format"), "pt");
}

TEST_F(QuantizedCheckpoint, PlainFpCheckpointLoads) {
  const std::string p = path("fp.safetensors");
  ASSERT_TRUE(write_safetensors(p, {{"a.weight", random_tensor({2, 3}, 1)}, {"a.bias", random_tensor({2}, 2)}},
                                {{"format", "pt"}})
                  .ok());
  absl::StatusOr<QuantizedStateDict> loaded = load_quantized_checkpoint(p);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->fp.size(), 2u);
  EXPECT_TRUE(loaded->quantized.empty());
}

TEST_F(QuantizedCheckpoint, RejectsMissingComponents) {
  expect_rejected([](SafetensorsFile& f) { remove_tensor(f, "bert.encoder.layer.0.attention.self.query.scales"); },
                  {"query.scales", "missing"});
  expect_rejected([](SafetensorsFile& f) { remove_tensor(f, "bert.encoder.layer.0.output.dense.qweight"); },
                  {"output.dense.qweight", "missing"});
  expect_rejected([](SafetensorsFile& f) { remove_tensor(f, "bert.encoder.layer.0.intermediate.dense.zeros"); },
                  {"intermediate.dense.zeros", "missing", "needs zero points"});
}

TEST_F(QuantizedCheckpoint, RejectsWrongShapes) {
  expect_rejected(
      [](SafetensorsFile& f) { tensor(f, "bert.encoder.layer.0.attention.self.query.scales") = Tensor::ones({9}); },
      {"query.scales", "expected F32 [8]", "got F32 [9]"});
  expect_rejected(
      [](SafetensorsFile& f) {
        tensor(f, "bert.encoder.layer.0.intermediate.dense.qweight") = Tensor::zeros({6, 13}, DType::kU8);
      },
      {"intermediate.dense.qweight", "expected U8 [6, 7]"});
  expect_rejected(
      [](SafetensorsFile& f) {
        tensor(f, "bert.encoder.layer.0.intermediate.dense.zeros") = Tensor::zeros({6, 3}, DType::kU8);
      },
      {"intermediate.dense.zeros", "expected U8 [6, 4]"});
}

TEST_F(QuantizedCheckpoint, RejectsWrongDtypes) {
  expect_rejected(
      [](SafetensorsFile& f) {
        Tensor& s = tensor(f, "bert.encoder.layer.0.attention.self.query.scales");
        s = s.to(DType::kF16);
      },
      {"query.scales", "expected F32", "got F16"});
  expect_rejected(
      [](SafetensorsFile& f) {
        Tensor& q = tensor(f, "bert.encoder.layer.0.attention.self.query.qweight");
        q = Tensor::zeros(q.shape(), DType::kU8);
      },
      {"query.qweight", "expected I8", "got U8"});
}

TEST_F(QuantizedCheckpoint, RejectsUnknownScheme) {
  expect_rejected(
      [](SafetensorsFile& f) {
        edit_metadata(f, [](Json& m) {
          set_entry_field(m, kQuery, "scheme",
                          scheme_json(R"({"bits":8,"symmetric":true,"granularity":"per_block"})"));
        });
      },
      {kQuery, "unknown quantization granularity \"per_block\""});
  expect_rejected(
      [](SafetensorsFile& f) {
        edit_metadata(f, [](Json& m) {
          set_entry_field(m, kQuery, "scheme", scheme_json(R"({"bits":16,"symmetric":true,"granularity":"per_channel"})"));
        });
      },
      {kQuery, "bits 16 out of range"});
}

TEST_F(QuantizedCheckpoint, RejectsSchemeThatDoesNotMatchTheTensors) {
  // Metadata says per_group(4), the scales are per channel.
  expect_rejected(
      [](SafetensorsFile& f) {
        edit_metadata(f, [](Json& m) {
          set_entry_field(m, kQuery, "scheme",
                          scheme_json(R"({"bits":8,"symmetric":true,"granularity":"per_group","group_size":4})"));
        });
      },
      {"query.scales", "expected F32 [8, 2]", "got F32 [8]"});
  // Metadata says 4-bit: the int8 codes are neither packed nor unsigned.
  expect_rejected(
      [](SafetensorsFile& f) {
        edit_metadata(f, [](Json& m) {
          set_entry_field(m, kQuery, "scheme", scheme_json(R"({"bits":4,"symmetric":true,"granularity":"per_channel"})"));
        });
      },
      {"query.qweight", "expected U8 [8, 4]", "got I8 [8, 8]"});
  // Metadata says symmetric, but zero points are stored.
  expect_rejected(
      [](SafetensorsFile& f) {
        edit_metadata(f, [](Json& m) {
          set_entry_field(m, kFfn, "scheme",
                          scheme_json(R"({"bits":4,"symmetric":true,"granularity":"per_group","group_size":4})"));
        });
      },
      {"intermediate.dense.zeros", "present, but the scheme"});
  // Logical shape K = 14 instead of 13: same packed width, but the groups differ.
  expect_rejected(
      [](SafetensorsFile& f) {
        edit_metadata(f, [](Json& m) { set_entry_field(m, kFfn, "shape", Json(Json::Array{Json(6), Json(17)})); });
      },
      {"intermediate.dense.qweight", "logical shape [6, 17]"});
  expect_rejected(
      [](SafetensorsFile& f) {
        edit_metadata(f, [](Json& m) { set_entry_field(m, kFfn, "shape", Json(Json::Array{Json(6)})); });
      },
      {kFfn, "\"shape\": [N, K]"});
}

TEST_F(QuantizedCheckpoint, RejectsOrphansAndBadMetadata) {
  expect_rejected(
      [](SafetensorsFile& f) { f.tensors.emplace_back("extra.qweight", Tensor::zeros({2, 2}, DType::kI8)); },
      {"extra.qweight", "not named by"});
  expect_rejected([](SafetensorsFile& f) { f.metadata.erase(kQuantMetadataKey); },
                  {"looks quantized", "no \"bertforge.quant\" metadata"});
  expect_rejected([](SafetensorsFile& f) { f.metadata[kQuantMetadataKey] = "{not json"; }, {"is not JSON"});
  expect_rejected([](SafetensorsFile& f) { edit_metadata(f, [](Json& m) { m.set("format_version", 2); }); },
                  {"unsupported quantized checkpoint format_version 2"});
  expect_rejected([](SafetensorsFile& f) { edit_metadata(f, [](Json& m) { m.set("tensors", Json::array()); }); },
                  {"needs an integer \"format_version\" and an object \"tensors\""});
  // An FP tensor under the name of a quantized parameter.
  expect_rejected([](SafetensorsFile& f) { f.tensors.emplace_back(kQuery, Tensor::zeros({8, 8})); },
                  {kQuery, "both as FP and quantized"});
  // Two parameters of the metadata ("X.weight" and "X") naming the same stored tensors.
  expect_rejected(
      [](SafetensorsFile& f) {
        edit_metadata(f, [](Json& m) {
          Json tensors = *m.get("tensors");
          tensors.set("bert.encoder.layer.0.attention.self.query", *tensors.get(kQuery));
          m.set("tensors", std::move(tensors));
        });
      },
      {"shares bert.encoder.layer.0.attention.self.query.qweight with another quantized parameter"});
}

// Logical shapes from the metadata at the edge of int64 (found by fuzzing, tests/fuzz/regressions/
// quantized_checkpoint/): the group count of K near 2^63 is computed without overflow, and an empty .qweight
// claiming 2^62 rows loads without a row-by-row scan of nothing.
TEST_F(QuantizedCheckpoint, LogicalShapesNearInt64MaxNeitherOverflowNorHang) {
  const int64_t huge_cols = 9223372036854774784;  // the largest double below 2^63; + group_size overflowed
  expect_rejected(
      [&](SafetensorsFile& f) {
        edit_metadata(f, [&](Json& m) {
          set_entry_field(m, kFfn, "shape", Json(Json::Array{0, huge_cols}));
          set_entry_field(m, kFfn, "scheme", scheme_json(R"({"bits": 4, "symmetric": false,
                                                            "granularity": "per_group", "group_size": 4096})"));
        });
        tensor(f, "bert.encoder.layer.0.intermediate.dense.qweight") = Tensor::empty({0, huge_cols / 2}, DType::kU8);
      },
      {"bert.encoder.layer.0.intermediate.dense.scales", "expected F32 [0, 2251799813685248]"});

  const std::string p = path("empty_rows.safetensors");
  QuantizedStateDict state;
  QuantizedWeight empty;
  empty.scheme = {8, true, Granularity::kPerTensor, 128};
  empty.rows = int64_t{1} << 62;
  empty.cols = 0;
  empty.qweight = Tensor::empty({empty.rows, 0}, DType::kI8);
  empty.scales = Tensor::from_vector(std::vector<float>{1.0f}, {1});
  state.quantized.emplace_back("x.weight", empty);
  ASSERT_TRUE(save_quantized_checkpoint(p, state).ok());
  absl::StatusOr<QuantizedStateDict> loaded = load_quantized_checkpoint(p);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->find_quantized("x.weight")->rows, int64_t{1} << 62);
}

TEST_F(QuantizedCheckpoint, RejectsValuesOutOfRange) {
  expect_rejected(
      [](SafetensorsFile& f) {
        tensor(f, "bert.encoder.layer.0.attention.self.query.qweight").data<int8_t>()[5] = -128;
      },
      {"query.qweight", "code -128 at (0, 5) outside [-127, 127]"});
  expect_rejected(
      [](SafetensorsFile& f) {
        tensor(f, "bert.encoder.layer.0.output.dense.qweight").data<uint8_t>()[0] = 0x0C;  // -4 in int3 sym
      },
      {"output.dense.qweight", "code -4 at (0, 0) outside [-3, 3]"});
  expect_rejected(
      [](SafetensorsFile& f) { tensor(f, "bert.encoder.layer.0.intermediate.dense.zeros").data<uint8_t>()[3] = 16; },
      {"intermediate.dense.zeros", "zero point 16", "outside [0, 15]"});
  expect_rejected(
      [](SafetensorsFile& f) {
        tensor(f, "bert.encoder.layer.0.attention.self.query.scales").data<float>()[2] = 0.0f;
      },
      {"query.scales", "scale 0 at index 2"});
  expect_rejected(
      [](SafetensorsFile& f) {
        tensor(f, "bert.encoder.layer.0.attention.self.query.scales").data<float>()[1] = NAN;
      },
      {"query.scales", "at index 1 is not finite"});
  expect_rejected(
      [](SafetensorsFile& f) {
        tensor(f, "bert.encoder.layer.0.intermediate.dense.qweight").data<uint8_t>()[6] |= 0x50;  // row 0, byte 6
      },
      {"intermediate.dense.qweight", "padding nibble of row 0"});
}

TEST_F(QuantizedCheckpoint, RejectsTruncatedFile) {
  const std::string p = path("ckpt.safetensors");
  ASSERT_TRUE(save_quantized_checkpoint(p, sample_state()).ok());
  absl::StatusOr<std::string> bytes = read_file(p);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(write_file_atomic(p, absl::string_view(*bytes).substr(0, bytes->size() - 10)).ok());
  absl::StatusOr<QuantizedStateDict> loaded = load_quantized_checkpoint(p);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss) << loaded.status();
  EXPECT_NE(std::string(loaded.status().message()).find("truncated"), std::string::npos) << loaded.status();
}

TEST_F(QuantizedCheckpoint, SaveRejectsInconsistentInput) {
  QuantizedStateDict state = sample_state();
  state.quantized[0].second.scales = Tensor();
  absl::Status st = save_quantized_checkpoint(path("a.safetensors"), state);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("query.scales\": missing"), std::string::npos) << st;
  state = sample_state();
  state.fp.emplace_back(kFfn, Tensor::zeros({6, 13}));
  EXPECT_FALSE(save_quantized_checkpoint(path("b.safetensors"), state).ok());
  state = sample_state();
  state.fp.emplace_back("x.scales", Tensor::zeros({1}));
  EXPECT_FALSE(save_quantized_checkpoint(path("c.safetensors"), state).ok());
  EXPECT_FALSE(std::filesystem::exists(path("a.safetensors")));
}

}  // namespace
}  // namespace bertforge::quant
