// tests/support/test_support.h — helpers shared by the GoogleTest suites under tests/ (header-only).
//
//   random_values / random_tensor / random_param  uniform float32 data from std::mt19937(seed), so a test's inputs
//                                                 are fixed by its seeds; random_param also requires grad
//   leaf                                          a float32 tensor from values, requiring grad
//   expect_gradcheck                              autograd::gradcheck as a non-fatal expectation
//   expect_near_all                               |got - want| <= tolerance elementwise, naming the first misses
//   source_path / torch_case / floats / doubles / shape_of
//                                                 PyTorch fixtures: tests/ops/fixtures/*.json read through
//                                                 BERTFORGE_SOURCE_DIR (set for every test target by
//                                                 tests/CMakeLists.txt)
//   TempDirTest                                   a test fixture with a fresh directory per test, removed afterwards
//   small_bert_config                             a 2-layer BERT config of the given sizes, for fast model tests
//
// Test files bring them in with `using namespace test_support;` (or a using-declaration) inside their own
// anonymous namespace in bertforge.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/check.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/tensor.h"
#include "models/bert_config.h"

#ifndef BERTFORGE_SOURCE_DIR
#error "BERTFORGE_SOURCE_DIR must name the repository root (tests/CMakeLists.txt defines it for test targets)"
#endif

namespace bertforge::test_support {

// ---- Random inputs -------------------------------------------------------------------------------------------

// n values uniform in [lo, hi), drawn in order from std::mt19937(seed).
inline std::vector<float> random_values(int64_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// A float32 tensor holding `values` in `shape`, requiring grad: an input of a gradient test.
inline Tensor leaf(const std::vector<float>& values, const Shape& shape) {
  Tensor t = Tensor::from_vector(values, shape);
  t.set_requires_grad(true);
  return t;
}

// A float32 tensor of `shape` with random_values(numel, lo, hi, seed); [-1, 1) when no range is given.
inline Tensor random_tensor(const Shape& shape, float lo, float hi, uint32_t seed) {
  return Tensor::from_vector(random_values(shape_numel(shape), lo, hi, seed), shape);
}
inline Tensor random_tensor(const Shape& shape, uint32_t seed) { return random_tensor(shape, -1.0f, 1.0f, seed); }

// random_tensor, requiring grad.
inline Tensor random_param(const Shape& shape, float lo, float hi, uint32_t seed) {
  return leaf(random_values(shape_numel(shape), lo, hi, seed), shape);
}
inline Tensor random_param(const Shape& shape, uint32_t seed) { return random_param(shape, -1.0f, 1.0f, seed); }

// ---- Expectations --------------------------------------------------------------------------------------------

// The analytic gradient of fn w.r.t. every input requiring grad matches central differences; `what` (if any)
// prefixes the failure message.
inline void expect_gradcheck(const autograd::GradcheckFn& fn, const std::vector<Tensor>& inputs,
                             const std::string& what = "", const autograd::GradcheckOptions& options = {}) {
  const absl::Status status = autograd::gradcheck(fn, inputs, options);
  if (what.empty()) {
    EXPECT_TRUE(status.ok()) << status;
  } else {
    EXPECT_TRUE(status.ok()) << what << ": " << status;
  }
}

// |got[i] - want[i]| <= tolerance for every i (a NaN is a miss); names the first five misses.
inline void expect_near_all(const std::vector<float>& got, const std::vector<double>& want, double tolerance,
                            const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int misses = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(got[i] - want[i]) <= tolerance) && ++misses <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i] << " (tolerance " << tolerance
                    << ")";
    }
  }
  EXPECT_EQ(misses, 0) << what;
}

// ---- PyTorch fixtures ----------------------------------------------------------------------------------------

// `relative` (e.g. "tests/ops/fixtures/adamw.txt") under the repository root.
inline std::string source_path(const std::string& relative) {
  return std::string(BERTFORGE_SOURCE_DIR) + "/" + relative;
}

// Case `name` of a JSON fixture {"cases": {name: {key: value or flat array, ...}}}; by default
// tests/ops/fixtures/softmax_layernorm_gelu.json, PyTorch's outputs and gradients written by
// tests/ops/make_softmax_fixture.py.
inline Json torch_case(const std::string& name,
                       const std::string& fixture = "tests/ops/fixtures/softmax_layernorm_gelu.json") {
  const std::string path = source_path(fixture);
  const absl::StatusOr<std::string> text = read_file(path);
  BF_CHECK(text.ok(), text.status().ToString());
  const absl::StatusOr<Json> json = Json::parse(*text);
  BF_CHECK(json.ok(), path, ": ", json.status().ToString());
  const Json* cases = json->get("cases");
  const Json* c = cases != nullptr ? cases->get(name) : nullptr;
  BF_CHECK(c != nullptr, path, " has no case ", name);
  return *c;
}

// The flat array `key` of a fixture case, as float32 (the fixture's dtype).
inline std::vector<float> floats(const Json& c, const char* key) {
  const Json* array = c.get(key);
  BF_CHECK(array != nullptr && array->is_array(), "fixture case has no array ", key);
  std::vector<float> v;
  for (const Json& x : array->as_array()) v.push_back(static_cast<float>(x.as_number()));
  return v;
}

// floats(c, key) widened to double: the float32 values exactly, as references for expect_near_all.
inline std::vector<double> doubles(const Json& c, const char* key) {
  const std::vector<float> v = floats(c, key);
  return std::vector<double>(v.begin(), v.end());
}

// The array `key` of a fixture case read as a shape.
inline Shape shape_of(const Json& c, const char* key) {
  Shape shape;
  for (float d : floats(c, key)) shape.push_back(static_cast<int64_t>(d));
  return shape;
}

// ---- Temporary directories -----------------------------------------------------------------------------------

// Each test gets a fresh empty directory dir_ = <gtest TempDir>bertforge_<prefix>_<test name>_<pid>, removed
// afterwards. A suite derives from it: `class FileIo : public TempDirTest { FileIo() : TempDirTest("file_io") {} };`
class TempDirTest : public ::testing::Test {
 protected:
  explicit TempDirTest(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    dir_ = ::testing::TempDir() + "bertforge_" + prefix_ + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `name` inside the test's directory.
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;

 private:
  std::string prefix_;
};

// A 2-layer BERT (the tiny preset's depth and defaults) with these sizes and an FFN of 2 * hidden.
inline BertConfig small_bert_config(int64_t vocab, int64_t hidden, int64_t heads, int64_t max_positions,
                                    AttentionVariant attention = AttentionVariant::kSoftmax) {
  BertConfig config = BertConfig::tiny();
  config.vocab_size = vocab;
  config.hidden_size = hidden;
  config.num_attention_heads = heads;
  config.intermediate_size = 2 * hidden;
  config.max_position_embeddings = max_positions;
  config.attention = attention;
  return config;
}

}  // namespace bertforge::test_support
