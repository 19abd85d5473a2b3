// Every path of floats_to_bf16 (core/bf16_convert.h), and Tensor::copy_ to bfloat16 which uses it, against round to
// nearest even computed independently (from the distances to the two neighbouring bfloat16 values, in double): the
// values where rounding is hard (ties both ways, carries into the exponent, overflow to infinity, subnormals), every
// kind of NaN, and random bit patterns on lengths around the vector widths; paths the CPU lacks are skipped.
#include "core/bf16_convert.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/check.h"
#include "core/tensor.h"
#include "tests/support/vector_isa_paths.h"

namespace bertforge {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// The bfloat16 bits nearest to x, ties to the even one; a NaN keeps its sign and top payload bits and is made quiet.
uint16_t nearest_bf16(float x) {
  const uint32_t u = to_bits(x);
  if (std::isnan(x)) return static_cast<uint16_t>((u >> 16) | 0x40);
  const auto toward_zero = static_cast<uint16_t>(u >> 16);  // same sign, magnitude rounded down
  if ((u & 0xffffu) == 0) return toward_zero;               // exact (zeros and infinities included)
  const auto away = static_cast<uint16_t>(toward_zero + 1);  // the next magnitude: may be infinity
  const auto value = [](uint16_t bits) {                     // as a double; infinity counts as 2^128 for distances
    const bool is_infinity = (bits & 0x7fffu) == 0x7f80u;
    const double magnitude = is_infinity ? std::ldexp(1.0, 128) : std::fabs(static_cast<double>(from_bits(bits << 16)));
    return (bits & 0x8000u) ? -magnitude : magnitude;
  };
  const double below = std::fabs(static_cast<double>(x) - value(toward_zero));
  const double above = std::fabs(value(away) - static_cast<double>(x));
  if (below != above) return below < above ? toward_zero : away;
  return (toward_zero & 1u) == 0 ? toward_zero : away;
}

class FloatsToBf16PathTest : public VectorIsaPathTest {};

// floats_to_bf16 of `values` equals nearest_bf16 element by element, and writes nothing past the end.
void expect_nearest(VectorIsa isa, const std::vector<float>& values) {
  constexpr uint16_t kCanary = 0xBEEF;
  std::vector<bf16> out(values.size() + 40, bf16{kCanary});
  floats_to_bf16(isa, values.data(), out.data(), static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(out[i].bits, nearest_bf16(values[i]))
        << "element " << i << " of " << values.size() << ": float bits 0x" << std::hex << to_bits(values[i]);
  }
  for (size_t i = values.size(); i < out.size(); ++i) ASSERT_EQ(out[i].bits, kCanary) << "written past the end at " << i;
}

TEST_P(FloatsToBf16PathTest, HardCasesRoundToNearestEven) {
  const std::vector<uint32_t> bits = {
      0x00000000, 0x80000000,                          // zeros
      0x3f800000, 0x3f808000, 0x3f818000, 0x3f80ffff,  // 1, a tie down to even, a tie up to even, just below 1 + ulp
      0x3f808001, 0x3f807fff, 0xbf808000, 0xbf818000,  // just above and below a tie; negative ties
      0x3fffffff, 0x3f7fffff, 0x407fffff,              // carries into the exponent
      0x7f7f7fff, 0x7f7f8000, 0x7f7fffff, 0xff7fffff,  // the largest bfloat16, a tie to infinity, overflow
      0x7f800000, 0xff800000,                          // infinities
      0x7f800001, 0x7fc00000, 0xffc12345, 0x7fbfffff,  // NaNs: signalling, quiet, negative, payload
      0x00000001, 0x00008000, 0x00018000, 0x00012345,  // subnormals: rounded, not flushed
      0x807fffff, 0x00800000, 0x0080ffff,              // the largest subnormal, the smallest normals
  };
  std::vector<float> values;
  for (uint32_t u : bits) values.push_back(from_bits(u));
  // In every position of a vector and its tail: the cases repeated with a shift of 0-16.
  for (int shift = 0; shift <= 16; ++shift) {
    std::vector<float> shifted(static_cast<size_t>(shift), 1.5f);
    for (int repeat = 0; repeat < 3; ++repeat) shifted.insert(shifted.end(), values.begin(), values.end());
    expect_nearest(GetParam(), shifted);
  }
}

TEST_P(FloatsToBf16PathTest, RandomBitPatternsAroundTheVectorWidths) {
  std::mt19937 rng(7);
  for (int n : {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000}) {
    std::vector<float> values(static_cast<size_t>(n));
    for (float& v : values) v = from_bits(static_cast<uint32_t>(rng()));  // every class: NaN, inf, subnormal, ...
    expect_nearest(GetParam(), values);
  }
}

INSTANTIATE_VECTOR_ISA_PATHS(FloatsToBf16PathTest);

TEST(FloatsToBf16, AnUnsupportedPathIsAnError) {
  int unsupported = 0;
  for (VectorIsa isa : {VectorIsa::kAvx2, VectorIsa::kAvx512}) {
    if (vector_isa_supported(isa)) continue;
    ++unsupported;
    const float x = 1;
    bf16 y;
    EXPECT_THROW(floats_to_bf16(isa, &x, &y, 1), Error) << vector_isa_name(isa);
  }
  if (unsupported == 0) GTEST_SKIP() << "this CPU has every path";
}

// Tensor::to(bf16): a contiguous source (rows through floats_to_bf16) and a transposed one (element by element) give
// the same, correctly rounded, values.
TEST(FloatsToBf16, TensorCopiesRoundToNearestEven) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> values(37 * 53);
  for (float& v : values) v = normal(rng);
  const Tensor source = Tensor::from_vector(values, {37, 53});
  const Tensor contiguous = source.to(DType::kBF16);
  const Tensor transposed = source.transpose(0, 1).to(DType::kBF16);  // [53, 37]
  const bf16* c = contiguous.data<bf16>();
  const bf16* t = transposed.contiguous().data<bf16>();
  for (int64_t i = 0; i < 37; ++i) {
    for (int64_t j = 0; j < 53; ++j) {
      ASSERT_EQ(c[i * 53 + j].bits, nearest_bf16(values[i * 53 + j])) << "contiguous, element " << i << ", " << j;
      ASSERT_EQ(t[j * 37 + i].bits, nearest_bf16(values[i * 53 + j])) << "transposed, element " << i << ", " << j;
    }
  }
}

}  // namespace
}  // namespace bertforge
