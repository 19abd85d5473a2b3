// Tests for the Philox4x32-10 generator: Random123 known answers, the stream
// definition, reproducibility, and the statistics of each distribution.
#include "core/philox.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <set>
#include <vector>

#include "core/tensor.h"

namespace bertforge {
namespace {

void expect_block(Uint32x4 counter, Uint32x2 key, Uint32x4 expected) {
  const Uint32x4 got = philox4x32_10(counter, key);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(got.x[k], expected.x[k]) << "word " << k;
}

// Known-answer vectors "philox4x32 10" from Random123's kat_vectors file.
TEST(Philox, Random123KnownAnswers) {
  expect_block({{0, 0, 0, 0}}, {{0, 0}}, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}});
  expect_block({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, {{0xffffffff, 0xffffffff}},
               {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}});
  expect_block({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, {{0xa4093822, 0x299f31d0}},
               {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}});
}

// Element i is word i % 4 of the block with counter {i / 4, offset}, key seed.
TEST(Philox, StreamDefinition) {
  const uint64_t seed = 0x0123456789abcdefull, offset = 0xfedcba9876543210ull;
  for (uint64_t i : {uint64_t{0}, uint64_t{3}, uint64_t{4}, uint64_t{1001}, (uint64_t{1} << 34) + 6}) {
    const uint64_t block = i / 4;
    const Uint32x4 expected = philox4x32_10(
        {{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0x76543210u, 0xfedcba98u}},
        {{0x89abcdefu, 0x01234567u}});
    EXPECT_EQ(philox_uint32(seed, offset, i), expected.x[i % 4]) << "element " << i;
  }
}

TEST(Philox, UniformIsTop24BitsOfTheWord) {
  for (uint64_t i = 0; i < 64; ++i) {
    const uint32_t w = philox_uint32(7, 9, i);
    EXPECT_EQ(philox_uniform(7, 9, i), static_cast<float>(w >> 8) / 16777216.0f);
  }
  EXPECT_LT(philox_word_to_uniform(0xffffffffu), 1.0f);
  EXPECT_EQ(philox_word_to_uniform(0u), 0.0f);
}

TEST(Philox, SameSeedAndOffsetReproduce) {
  Tensor a = Tensor::empty({1000}), b = Tensor::empty({1000});
  fill_normal(a, 42, 7, 0.0f, 1.0f);
  fill_normal(b, 42, 7, 0.0f, 1.0f);
  EXPECT_EQ(a.to_float_vector(), b.to_float_vector());
}

TEST(Philox, DifferentSeedsOrOffsetsDiffer) {
  Tensor base = Tensor::empty({256}), other_seed = Tensor::empty({256}), other_offset = Tensor::empty({256});
  fill_uniform(base, 1, 0, 0.0f, 1.0f);
  fill_uniform(other_seed, 2, 0, 0.0f, 1.0f);
  fill_uniform(other_offset, 1, 1, 0.0f, 1.0f);
  int same_seed_matches = 0, same_offset_matches = 0;
  for (int64_t k = 0; k < 256; ++k) {
    same_seed_matches += base.data<float>()[k] == other_seed.data<float>()[k];
    same_offset_matches += base.data<float>()[k] == other_offset.data<float>()[k];
  }
  EXPECT_LE(same_seed_matches, 1);
  EXPECT_LE(same_offset_matches, 1);
}

// A GPU thread computing element i alone must get what the CPU filler wrote there.
TEST(Philox, ElementAloneEqualsFill) {
  const int64_t n = 1027;  // not a multiple of 4: the last block is partial
  Tensor u = Tensor::empty({n}), z = Tensor::empty({n}), m = Tensor::empty({n});
  fill_uniform(u, 5, 11, 0.0f, 1.0f);
  fill_normal(z, 5, 11, 0.0f, 1.0f);
  fill_bernoulli(m, 5, 11, 0.25f);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(u.data<float>()[i], philox_uniform(5, 11, i)) << i;
    ASSERT_EQ(z.data<float>()[i], philox_normal(5, 11, i)) << i;
    ASSERT_EQ(m.data<float>()[i], philox_bernoulli(5, 11, i, 0.25f) ? 1.0f : 0.0f) << i;
  }
}

TEST(Philox, FillDoesNotDependOnThreadCount) {
  Tensor one = Tensor::empty({4, 1001}), many = Tensor::empty({4, 1001});
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  fill_normal(one, 3, 4, 0.5f, 2.0f);
  omp_set_num_threads(4);
  fill_normal(many, 3, 4, 0.5f, 2.0f);
  omp_set_num_threads(saved);
  EXPECT_EQ(one.to_float_vector(), many.to_float_vector());
}

// ---- Statistics over 1e6 samples, bounds at 5 standard errors ------------------------------

struct Moments {
  double mean = 0, variance = 0;
};
Moments moments(const std::vector<float>& x) {
  Moments m;
  for (float v : x) m.mean += v;
  m.mean /= x.size();
  for (float v : x) m.variance += (v - m.mean) * (v - m.mean);
  m.variance /= x.size();
  return m;
}

constexpr int64_t kSamples = 1000000;

TEST(Philox, UniformStatistics) {
  Tensor t = Tensor::empty({kSamples});
  fill_uniform(t, 2024, 1, -2.0f, 3.0f);
  const std::vector<float> x = t.to_float_vector();
  for (float v : x) ASSERT_TRUE(v >= -2.0f && v < 3.0f) << v;
  // U(a, b): mean (a+b)/2, variance (b-a)^2/12; var of (x-mu)^2 is (b-a)^4 (1/80 - 1/144).
  const Moments m = moments(x);
  const double width = 5.0, n = kSamples;
  EXPECT_NEAR(m.mean, 0.5, 5 * std::sqrt(width * width / 12 / n));
  EXPECT_NEAR(m.variance, width * width / 12, 5 * std::sqrt(std::pow(width, 4) * (1.0 / 80 - 1.0 / 144) / n));
}

TEST(Philox, NormalStatistics) {
  Tensor t = Tensor::empty({kSamples});
  fill_normal(t, 2024, 2, 0.0f, 1.0f);
  const std::vector<float> z = t.to_float_vector();
  const Moments m = moments(z);
  const double n = kSamples;
  EXPECT_NEAR(m.mean, 0.0, 5 * std::sqrt(1 / n));
  EXPECT_NEAR(m.variance, 1.0, 5 * std::sqrt(2 / n));  // var(z^2) = 2
  // Tails: P(|z| > 2) = 0.0455 for a Gaussian.
  const double p_tail = 0.04550026;
  int64_t tail = 0;
  double pair_product = 0;  // the cos and sin of one Box-Muller pair must be uncorrelated
  for (size_t k = 0; k < z.size(); ++k) {
    tail += std::fabs(z[k]) > 2.0f;
    if (k % 2 == 0) pair_product += static_cast<double>(z[k]) * z[k + 1];
  }
  EXPECT_NEAR(tail / n, p_tail, 5 * std::sqrt(p_tail * (1 - p_tail) / n));
  EXPECT_NEAR(pair_product / (n / 2), 0.0, 5 * std::sqrt(1 / (n / 2)));
}

TEST(Philox, NormalMeanAndStd) {
  Tensor t = Tensor::empty({kSamples});
  fill_normal(t, 99, 0, 2.0f, 3.0f);
  const Moments m = moments(t.to_float_vector());
  const double n = kSamples;
  EXPECT_NEAR(m.mean, 2.0, 5 * 3.0 / std::sqrt(n));
  EXPECT_NEAR(m.variance, 9.0, 5 * 9.0 * std::sqrt(2 / n));
}

TEST(Philox, BernoulliFrequency) {
  Tensor t = Tensor::empty({kSamples});
  const double p = 0.3;
  fill_bernoulli(t, 7, philox_stream_offset(10, 0, 3, 0), static_cast<float>(p));
  double ones = 0;
  for (float v : t.to_float_vector()) {
    ASSERT_TRUE(v == 0.0f || v == 1.0f);
    ones += v;
  }
  EXPECT_NEAR(ones / kSamples, p, 5 * std::sqrt(p * (1 - p) / kSamples));
}

TEST(Philox, BernoulliEdgeProbabilities) {
  Tensor never = Tensor::empty({1000}), always = Tensor::empty({1000});
  fill_bernoulli(never, 1, 2, 0.0f);
  fill_bernoulli(always, 1, 2, 1.0f);
  for (int64_t k = 0; k < 1000; ++k) {
    EXPECT_EQ(never.data<float>()[k], 0.0f);
    EXPECT_EQ(always.data<float>()[k], 1.0f);
  }
}

// ---- Stream offsets ------------------------------------------------------------------------------

TEST(Philox, StreamOffsetMixesAllInputsInOrder) {
  EXPECT_EQ(philox_stream_offset(1, 2, 3, 4), philox_stream_offset(1, 2, 3, 4));
  EXPECT_NE(philox_stream_offset(1, 2, 3, 4), philox_stream_offset(2, 1, 3, 4));
  EXPECT_NE(philox_stream_offset(1, 2, 3, 4), philox_stream_offset(1, 2, 4, 3));
  EXPECT_NE(philox_stream_offset(0, 0, 0, 0), philox_stream_offset(0, 0, 0, 1));
  std::set<uint64_t> seen;
  for (uint64_t step = 0; step < 1000; ++step) {
    for (uint64_t rank = 0; rank < 8; ++rank) {
      for (uint64_t tensor_id = 0; tensor_id < 4; ++tensor_id) {
        seen.insert(philox_stream_offset(step, rank, tensor_id, 0));
      }
    }
  }
  EXPECT_EQ(seen.size(), 1000u * 8 * 4);
}

// ---- Preconditions ---------------------------------------------------------------------------------

TEST(Philox, FillersRejectWrongTensors) {
  Tensor ints = Tensor::empty({4}, DType::kI32);
  EXPECT_THROW(fill_uniform(ints, 1, 2, 0.0f, 1.0f), Error);
  Tensor transposed = Tensor::empty({3, 4}).transpose(0, 1);
  EXPECT_THROW(fill_normal(transposed, 1, 2, 0.0f, 1.0f), Error);
}

TEST(Philox, FillsEmptyAndScalarTensors) {
  Tensor empty = Tensor::empty({0, 5});
  fill_uniform(empty, 1, 2, 0.0f, 1.0f);
  Tensor scalar = Tensor::empty({});
  fill_normal(scalar, 1, 2, 0.0f, 1.0f);
  EXPECT_EQ(scalar.item<float>(), philox_normal(1, 2, 0));
}

}  // namespace
}  // namespace bertforge
