// tests/ops/test_dropout.cpp — dropout and head dropout: masks as pure functions of
// the Philox key, keep fractions (statistical, within 5 sigma), exact scales,
// backward = the regenerated mask applied to dout (explicitly and by gradcheck),
// eval/p = 0 identity, p = 1, argument checks, thread-count independence.
#include "ops/dropout.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "autograd/engine.h"
#include "core/philox.h"
#include "ops/head_dropout_mask.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

int64_t CountNonZero(const std::vector<float>& values) {
  int64_t count = 0;
  for (float v : values) count += v != 0.0f;
  return count;
}

// The values fn() returns with OpenMP limited to `threads` threads (the previous limit restored afterwards).
std::vector<float> ValuesWithThreads(int threads, const std::function<Tensor()>& fn) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  const std::vector<float> values = fn().to_float_vector();
  omp_set_num_threads(saved);
  return values;
}

const DropoutKey kKey = dropout_key(/*seed=*/42, /*step=*/3, /*rank=*/0, /*tensor_id=*/7);

// ---- Dropout ----------------------------------------------------------------

TEST(Dropout, SameKeyGivesSameMask) {
  const Tensor x = random_tensor({64, 33}, -2.0f, 2.0f, 1);
  const std::vector<float> a = dropout(x, 0.4f, kKey, true).to_float_vector();
  const std::vector<float> b = dropout(x, 0.4f, dropout_key(42, 3, 0, 7), true).to_float_vector();
  EXPECT_EQ(a, b);
}

TEST(Dropout, DifferentKeysGiveDifferentMasks) {
  const Tensor x = Tensor::ones({4096});
  const std::vector<float> base = dropout(x, 0.5f, kKey, true).to_float_vector();
  const DropoutKey others[] = {dropout_key(42, 4, 0, 7), dropout_key(42, 3, 1, 7), dropout_key(42, 3, 0, 8),
                               dropout_key(42, 3, 0, 7, /*micro_step=*/1), dropout_key(43, 3, 0, 7)};
  for (const DropoutKey& key : others) {
    const std::vector<float> other = dropout(x, 0.5f, key, true).to_float_vector();
    int64_t differ = 0;
    for (size_t i = 0; i < base.size(); ++i) differ += base[i] != other[i];
    // Independent masks differ in half the elements: 2048 +- 32; 5 sigma below is 1888.
    EXPECT_GT(differ, 1888) << "offset " << key.offset << " seed " << key.seed;
  }
}

// The definition the CUDA kernel must also follow: element i is kept iff
// philox_uniform(seed, offset, i) >= p, and scaled by exactly 1 / (1 - p) in float.
TEST(Dropout, FollowsThePhiloxDefinition) {
  const float p = 0.3f;
  const Tensor x = random_tensor({5000}, -2.0f, 2.0f, 2);
  const std::vector<float> in = x.to_float_vector(), out = dropout(x, p, kKey, true).to_float_vector();
  const float scale = 1.0f / (1.0f - p);
  for (size_t i = 0; i < in.size(); ++i) {
    const bool keep = philox_uniform(kKey.seed, kKey.offset, i) >= p;
    ASSERT_EQ(out[i], keep ? in[i] * scale : 0.0f) << "element " << i;
  }
}

TEST(Dropout, KeepFractionIsOneMinusP) {
  const int64_t n = 1000000;
  const Tensor x = Tensor::ones({n});
  for (float p : {0.1f, 0.5f, 0.9f}) {
    const std::vector<float> out = dropout(x, p, kKey, true).to_float_vector();
    const float scale = 1.0f / (1.0f - p);
    int64_t kept = 0;
    for (float v : out) {
      ASSERT_TRUE(v == 0.0f || v == scale) << "p = " << p << ": value " << v;
      kept += v != 0.0f;
    }
    const double expected = n * (1.0 - p), sigma = std::sqrt(n * p * (1.0 - p));
    EXPECT_LE(std::fabs(kept - expected), 5 * sigma) << "p = " << p << ": kept " << kept;
  }
}

TEST(Dropout, BackwardAppliesTheSameMask) {
  const float p = 0.25f;
  Tensor x = random_param({37, 41}, -2.0f, 2.0f, 3);
  const Tensor out = dropout(x, p, kKey, true);
  const Tensor dout = random_tensor({37, 41}, -2.0f, 2.0f, 4);
  autograd::backward(out, dout);
  const std::vector<float> y = out.to_float_vector(), dy = dout.to_float_vector(), dx = x.grad().to_float_vector();
  const float scale = 1.0f / (1.0f - p);
  for (size_t i = 0; i < y.size(); ++i) {
    const bool keep = philox_uniform(kKey.seed, kKey.offset, i) >= p;
    ASSERT_EQ(dx[i], keep ? dy[i] * scale : 0.0f) << "element " << i;
    ASSERT_EQ(y[i] != 0.0f, keep) << "element " << i;
  }
}

// The mask is a pure function of the key, so the op is a fixed linear map
// that finite differences can check.
TEST(Dropout, Gradcheck) {
  Tensor x = random_param({6, 7}, -2.0f, 2.0f, 5);
  expect_gradcheck([](const std::vector<Tensor>& in) { return dropout(in[0], 0.4f, kKey, true); }, {x});
}

TEST(Dropout, NonContiguousInputUsesRowMajorOrder) {
  const Tensor x = random_tensor({40, 30}, -2.0f, 2.0f, 6).transpose(0, 1);  // (30, 40), strided
  EXPECT_EQ(dropout(x, 0.5f, kKey, true).to_float_vector(),
            dropout(x.contiguous(), 0.5f, kKey, true).to_float_vector());
}

TEST(Dropout, IdentityAtEvalAndForPZero) {
  Tensor x = random_param({8, 9}, -2.0f, 2.0f, 7);
  const Tensor eval = dropout(x, 0.5f, kKey, /*training=*/false);
  EXPECT_TRUE(eval.shares_storage_with(x));
  EXPECT_EQ(eval.to_float_vector(), x.to_float_vector());
  const Tensor p0 = dropout(x, 0.0f, kKey, true);
  EXPECT_TRUE(p0.shares_storage_with(x));
  EXPECT_EQ(p0.to_float_vector(), x.to_float_vector());
}

TEST(Dropout, POneGivesZerosAndZeroGradient) {
  Tensor x = random_param({100}, -2.0f, 2.0f, 8);
  const Tensor out = dropout(x, 1.0f, kKey, true);
  EXPECT_EQ(CountNonZero(out.to_float_vector()), 0);
  autograd::backward(out, Tensor::ones({100}));
  EXPECT_EQ(CountNonZero(x.grad().to_float_vector()), 0);
  EXPECT_FALSE(std::isnan(x.grad().to_float_vector()[0]));
}

TEST(Dropout, RejectsPOutsideZeroOne) {
  const Tensor x = Tensor::ones({4});
  EXPECT_THROW(dropout(x, -0.1f, kKey, true), Error);
  EXPECT_THROW(dropout(x, 1.5f, kKey, true), Error);
  EXPECT_THROW(dropout(x, std::numeric_limits<float>::quiet_NaN(), kKey, true), Error);
  EXPECT_THROW(dropout(x, 1.5f, kKey, /*training=*/false), Error);  // checked at eval too
  EXPECT_THROW(dropout(Tensor::zeros({4}, DType::kI64), 0.5f, kKey, true), Error);
}

TEST(Dropout, SameResultForAnyThreadCount) {
  // Above the kernel's parallel threshold, not a multiple of 4.
  const Tensor x = random_tensor({300001}, -2.0f, 2.0f, 9);
  auto run = [&x] { return dropout(x, 0.2f, kKey, true); };
  const std::vector<float> one = ValuesWithThreads(1, run), two = ValuesWithThreads(2, run);
  EXPECT_EQ(one, two);
}

// ---- Head dropout -------------------------------------------------------------

// The kept heads and scale of every sample of out (B, H, inner), read back from x and out:
// each (b, h) block must be all zero or exactly x * scale(b), with scale(b) = H / kept(b).
struct SampleMasks {
  std::vector<std::vector<bool>> kept;
};

SampleMasks CheckHeadBlocks(const Tensor& x, const Tensor& out) {
  const int64_t batch = x.size(0), heads = x.size(1), inner = x.numel() / (batch * heads);
  const std::vector<float> in = x.to_float_vector(), y = out.to_float_vector();
  SampleMasks masks;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<bool> kept(heads);
    int64_t num_kept = 0;
    for (int64_t h = 0; h < heads; ++h) {
      kept[h] = y[(b * heads + h) * inner] != 0.0f;
      num_kept += kept[h];
    }
    EXPECT_GE(num_kept, 1) << "sample " << b << " has every head dropped";
    const float scale = static_cast<float>(heads) / static_cast<float>(std::max<int64_t>(num_kept, 1));
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t k = (b * heads + h) * inner + i;
        EXPECT_EQ(y[k], kept[h] ? in[k] * scale : 0.0f) << "sample " << b << " head " << h << " element " << i;
      }
    }
    masks.kept.push_back(kept);
  }
  return masks;
}

TEST(HeadDropout, BlocksAreAllKeptAndScaledOrAllZero) {
  const Tensor x = random_tensor({16, 12, 5, 4}, -2.0f, 2.0f, 10);  // (B, H, T, d): no zero entries
  CheckHeadBlocks(x, head_dropout(x, 0.3f, kKey, true));
}

TEST(HeadDropout, FollowsTheSharedMaskFunction) {
  const int64_t batch = 50, heads = 12;
  const float p = 0.5f;
  const Tensor x = random_tensor({batch, heads, 3}, -2.0f, 2.0f, 11);
  const SampleMasks masks = CheckHeadBlocks(x, head_dropout(x, p, kKey, true));
  for (int64_t b = 0; b < batch; ++b) {
    const HeadDropoutMask mask = head_dropout_mask(kKey.seed, kKey.offset, b, heads, p);
    for (int64_t h = 0; h < heads; ++h) {
      EXPECT_EQ(masks.kept[b][h], ((mask.keep_bits >> h) & 1) != 0) << "sample " << b << " head " << h;
    }
    // Attempt 0 is the plain draw: when it keeps some head, it is the mask.
    uint64_t first_attempt = 0;
    for (int h = 0; h < heads; ++h) {
      if (philox_uniform(kKey.seed, kKey.offset, b * kHeadDropoutMaxAttempts * heads + h) >= p) {
        first_attempt |= uint64_t{1} << h;
      }
    }
    if (first_attempt != 0) {
      EXPECT_EQ(mask.keep_bits, first_attempt) << "sample " << b;
    }
  }
}

// p = 0.9 with 12 heads drops every head of a sample with probability 0.9^12 = 0.28:
// over 20000 samples about 5650 need a redraw, and none may end up empty.
TEST(HeadDropout, NoSampleLosesEveryHead) {
  const int64_t batch = 20000, heads = 12;
  const float p = 0.9f;
  const Tensor x = Tensor::ones({batch, heads, 1});
  const std::vector<float> y = head_dropout(x, p, kKey, true).to_float_vector();
  int64_t redrawn = 0;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t kept = 0;
    for (int64_t h = 0; h < heads; ++h) kept += y[b * heads + h] != 0.0f;
    ASSERT_GE(kept, 1) << "sample " << b;
    bool first_attempt_empty = true;
    for (int64_t h = 0; h < heads; ++h) {
      if (philox_uniform(kKey.seed, kKey.offset, b * kHeadDropoutMaxAttempts * heads + h) >= p) {
        first_attempt_empty = false;
      }
    }
    redrawn += first_attempt_empty;
  }
  // Binomial(20000, 0.2824): mean 5648, sigma 64; the redraw path really ran.
  EXPECT_NEAR(redrawn, 5648, 5 * 64);
}

// With the redraw, the kept fraction is (1 - p) / (1 - p^H) (conditioning on "not all
// dropped"); for H = 12 and p = 0.3 that is 0.7 to 4e-7. Within 5 sigma over 1.2e6 heads.
TEST(HeadDropout, KeepFractionForTwelveHeads) {
  const int64_t batch = 100000, heads = 12;
  for (float p : {0.1f, 0.3f, 0.6f}) {
    const Tensor x = Tensor::ones({batch, heads, 1});
    const std::vector<float> y = head_dropout(x, p, kKey, true).to_float_vector();
    const double n = static_cast<double>(batch * heads);
    const double expected_fraction = (1.0 - p) / (1.0 - std::pow(static_cast<double>(p), heads));
    const double sigma = std::sqrt(expected_fraction * (1.0 - expected_fraction) / n);
    EXPECT_NEAR(CountNonZero(y) / n, expected_fraction, 5 * sigma) << "p = " << p;
  }
}

TEST(HeadDropout, FallbackKeepsEveryHeadWhenNoDrawKeepsOne) {
  // p = 1 - 2^-24: a head survives only if its uniform is exactly 1 - 2^-24 (chance 2^-24),
  // so all 64 attempts drop everything and the documented fallback applies.
  const float p = 1.0f - 1.0f / 16777216.0f;
  const HeadDropoutMask mask = head_dropout_mask(1, 2, 3, 12, p);
  EXPECT_EQ(mask.keep_bits, (uint64_t{1} << 12) - 1);
  EXPECT_EQ(mask.scale, 1.0f);
  const HeadDropoutMask all64 = head_dropout_mask(1, 2, 3, 64, p);
  EXPECT_EQ(all64.keep_bits, ~uint64_t{0});
}

TEST(HeadDropout, BackwardAppliesTheSameMask) {
  const int64_t batch = 6, heads = 8, inner = 6;
  const float p = 0.5f;
  Tensor x = random_param({batch, heads, 3, 2}, -2.0f, 2.0f, 12);
  const Tensor out = head_dropout(x, p, kKey, true);
  const Tensor dout = random_tensor({batch, heads, 3, 2}, -2.0f, 2.0f, 13);
  autograd::backward(out, dout);
  const std::vector<float> dy = dout.to_float_vector(), dx = x.grad().to_float_vector();
  for (int64_t b = 0; b < batch; ++b) {
    const HeadDropoutMask mask = head_dropout_mask(kKey.seed, kKey.offset, b, heads, p);
    for (int64_t h = 0; h < heads; ++h) {
      const bool kept = (mask.keep_bits >> h) & 1;
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t k = (b * heads + h) * inner + i;
        ASSERT_EQ(dx[k], kept ? dy[k] * mask.scale : 0.0f) << "sample " << b << " head " << h;
      }
    }
  }
}

TEST(HeadDropout, Gradcheck) {
  Tensor x = random_param({3, 6, 2, 2}, -2.0f, 2.0f, 14);
  expect_gradcheck([](const std::vector<Tensor>& in) { return head_dropout(in[0], 0.5f, kKey, true); }, {x});
}

TEST(HeadDropout, IdentityAtEvalAndForPZero) {
  const Tensor x = random_tensor({2, 4, 3}, -2.0f, 2.0f, 15);
  EXPECT_TRUE(head_dropout(x, 0.5f, kKey, false).shares_storage_with(x));
  EXPECT_TRUE(head_dropout(x, 0.0f, kKey, true).shares_storage_with(x));
}

TEST(HeadDropout, RejectsBadArguments) {
  EXPECT_THROW(head_dropout(Tensor::ones({2, 4}), 1.0f, kKey, true), Error);  // p = 1 cannot keep a head
  EXPECT_THROW(head_dropout(Tensor::ones({2, 4}), -0.5f, kKey, true), Error);
  EXPECT_THROW(head_dropout(Tensor::ones({8}), 0.5f, kKey, true), Error);  // needs (B, H, ...)
  EXPECT_THROW(head_dropout(Tensor::ones({2, 65, 3}), 0.5f, kKey, true), Error);
}

TEST(HeadDropout, SameResultForAnyThreadCount) {
  const Tensor x = random_tensor({8, 12, 64, 16}, -2.0f, 2.0f, 16);  // above the parallel threshold
  auto run = [&x] { return head_dropout(x, 0.3f, kKey, true); };
  const std::vector<float> one = ValuesWithThreads(1, run), two = ValuesWithThreads(2, run);
  EXPECT_EQ(one, two);
}

}  // namespace
}  // namespace bertforge
