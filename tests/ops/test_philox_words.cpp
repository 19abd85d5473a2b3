// Every path of philox_words (ops/cpu/philox_words.h) against philox_block one block at a time (itself checked
// against Random123's known answers in tests/core/test_philox.cpp), on lengths around the vector widths and on
// counters whose low word wraps; paths the CPU lacks are skipped.
#include "ops/cpu/philox_words.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/philox.h"

namespace bertforge::cpu {

void PrintTo(PhiloxIsa isa, std::ostream* os) { *os << philox_isa_name(isa); }  // GoogleTest's name for a path

namespace {

class PhiloxWordsPathTest : public ::testing::TestWithParam<PhiloxIsa> {
 protected:
  void SetUp() override {
    if (!philox_isa_supported(GetParam())) {
      GTEST_SKIP() << philox_isa_name(GetParam()) << " is not available on this CPU (compiled, not executed)";
    }
  }
};

// words[4 b + j] == philox_block(seed, offset, first + b).x[j] for every b < n, and nothing past 4 n is written.
void expect_blocks(PhiloxIsa isa, uint64_t seed, uint64_t offset, uint64_t first, int64_t n) {
  constexpr uint32_t kCanary = 0xDEADBEEFu;
  std::vector<uint32_t> words(4 * n + 64, kCanary);
  philox_words(isa, seed, offset, first, n, words.data());
  for (int64_t b = 0; b < n; ++b) {
    const Uint32x4 block = philox_block(seed, offset, first + static_cast<uint64_t>(b));
    for (int j = 0; j < 4; ++j) {
      ASSERT_EQ(words[4 * b + j], block.x[j]) << "block " << first + b << " word " << j << ", " << n << " blocks";
    }
  }
  for (size_t i = 4 * n; i < words.size(); ++i) ASSERT_EQ(words[i], kCanary) << "written past the end at " << i;
}

TEST_P(PhiloxWordsPathTest, EqualsPhiloxBlockAroundTheVectorWidths) {
  for (int64_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 64, 65, 100, 512}) {
    expect_blocks(GetParam(), 0, 0, 0, n);
    expect_blocks(GetParam(), 0x0123456789ABCDEFull, 0xFEDCBA9876543210ull, 5, n);
  }
}

TEST_P(PhiloxWordsPathTest, CarriesTheBlockNumberIntoItsHighWord) {
  // Blocks 2^32 - 20 .. 2^32 + 80: word 1 of the counter changes inside a vector.
  expect_blocks(GetParam(), 42, 7, (uint64_t{1} << 32) - 20, 100);
  expect_blocks(GetParam(), ~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0} - 40, 33);  // and wraps around 2^64
}

TEST_P(PhiloxWordsPathTest, ManyStreams) {
  for (uint64_t s = 0; s < 50; ++s) {
    expect_blocks(GetParam(), splitmix64(s), philox_stream_offset(s, 1, 2, 3), splitmix64(s + 1000) >> 20, 37);
  }
}

INSTANTIATE_TEST_SUITE_P(AllPaths, PhiloxWordsPathTest,
                         ::testing::Values(PhiloxIsa::kScalar, PhiloxIsa::kAvx2, PhiloxIsa::kAvx512),
                         [](const ::testing::TestParamInfo<PhiloxIsa>& info) {
                           return std::string(philox_isa_name(info.param));
                         });

TEST(PhiloxWords, TheDefaultIsTheWidestPathThisCpuHas) {
  EXPECT_TRUE(philox_isa_supported(PhiloxIsa::kScalar));
#if defined(__x86_64__)
  EXPECT_EQ(philox_isa_supported(PhiloxIsa::kAvx2), __builtin_cpu_supports("avx2") != 0);
  EXPECT_EQ(philox_isa_supported(PhiloxIsa::kAvx512), __builtin_cpu_supports("avx512f") != 0);
#endif
  const PhiloxIsa expected = philox_isa_supported(PhiloxIsa::kAvx512) ? PhiloxIsa::kAvx512
                             : philox_isa_supported(PhiloxIsa::kAvx2) ? PhiloxIsa::kAvx2
                                                                      : PhiloxIsa::kScalar;
  EXPECT_EQ(philox_default_isa(), expected);
}

TEST(PhiloxWords, AnUnsupportedPathIsAnError) {
  int unsupported = 0;
  for (PhiloxIsa isa : {PhiloxIsa::kAvx2, PhiloxIsa::kAvx512}) {
    if (philox_isa_supported(isa)) continue;
    ++unsupported;
    uint32_t words[4];
    EXPECT_THROW(philox_words(isa, 1, 2, 3, 1, words), Error) << philox_isa_name(isa);
  }
  if (unsupported == 0) GTEST_SKIP() << "this CPU has every path";
}

}  // namespace
}  // namespace bertforge::cpu
