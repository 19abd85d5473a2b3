// Asymmetric activation fake quantization (quant/activation_quant.h) against its closed form: scale and zero
// point of a range; error at most s/2 inside the range; clamping to the grid's ends outside; zero exactly
// representable; zero-width ranges; NaN and infinities; the tensor entry point on strided and bf16 input; dynamic
// per-token fake quantization (each row its own range, widened to 0) against from_range + the per-tensor kernel.
//
// Tolerance: inside the range |fq(a) - a| <= s/2 (1 + 1e-5) + 1e-6 |a|: a/s and (q - z) s each round once in
// float.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "quant/activation_quant.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using test_support::random_values;

float fq(float a, const ActivationQuantParams& p) {
  float out;
  fake_quantize_activation(&a, &out, 1, p);
  return out;
}

TEST(ActivationQuant, ParamsFollowTheClosedForm) {
  const ActivationQuantParams p = ActivationQuantParams::from_range({-1.0f, 3.0f}, 8);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 64);  // round(1 / (4/255)) = round(63.75)
  EXPECT_EQ(p.qmax(), 255);
  const ActivationQuantParams p4 = ActivationQuantParams::from_range({0.0f, 1.0f}, 4);  // softmax probabilities
  EXPECT_FLOAT_EQ(p4.scale, 1.0f / 15.0f);
  EXPECT_EQ(p4.zero_point, 0);
  EXPECT_EQ(fq(0.0f, p4), 0.0f);
  EXPECT_FLOAT_EQ(fq(1.0f, p4), 1.0f);
  // A range above 0: a negative zero point, the grid still spans the range.
  const ActivationQuantParams above = ActivationQuantParams::from_range({2.0f, 4.0f}, 8);
  EXPECT_LT(above.zero_point, 0);
  EXPECT_NEAR(above.grid_min(), 2.0f, above.scale / 2);
  EXPECT_NEAR(above.grid_max(), 4.0f, above.scale / 2);
  EXPECT_THROW(ActivationQuantParams::from_range({1.0f, 0.0f}, 8), Error);
  EXPECT_THROW(ActivationQuantParams::from_range({0.0f, 1.0f}, 1), Error);
  EXPECT_THROW(ActivationQuantParams::from_range({0.0f, std::numeric_limits<float>::infinity()}, 8), Error);
}

TEST(ActivationQuant, ErrorIsAtMostHalfAStepInsideTheRange) {
  for (int bits : {8, 6, 4}) {
    for (const ActivationRange range : {ActivationRange{-1.3f, 2.7f}, ActivationRange{-0.17f, 11.0f},
                                        ActivationRange{0.5f, 0.75f}, ActivationRange{-40.0f, -3.0f}}) {
      const ActivationQuantParams p = ActivationQuantParams::from_range(range, bits);
      std::vector<float> a = random_values(100000, range.min, range.max, 7 + bits);
      a.push_back(range.min);
      a.push_back(range.max);
      std::vector<float> out(a.size());
      fake_quantize_activation(a.data(), out.data(), static_cast<int64_t>(a.size()), p);
      double worst = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        const double err = std::fabs(static_cast<double>(out[i]) - a[i]);
        worst = std::max(worst, err / (p.scale / 2.0 * (1 + 1e-5) + 1e-6 * std::fabs(a[i])));
        // Every output lies on the grid (k - z) s, k in [0, Q].
        const double k = static_cast<double>(out[i]) / p.scale + p.zero_point;
        ASSERT_NEAR(k, std::nearbyint(k), 1e-3);
        ASSERT_GE(std::nearbyint(k), 0);
        ASSERT_LE(std::nearbyint(k), p.qmax());
      }
      EXPECT_LE(worst, 1.0) << bits << " bits, [" << range.min << ", " << range.max << "]";
    }
  }
}

TEST(ActivationQuant, ClampsOutsideTheRange) {
  const ActivationQuantParams p = ActivationQuantParams::from_range({-1.0f, 3.0f}, 6);
  for (float a : {3.5f, 10.0f, 1e30f, std::numeric_limits<float>::infinity()}) EXPECT_EQ(fq(a, p), p.grid_max());
  for (float a : {-1.5f, -1e30f, -std::numeric_limits<float>::infinity()}) EXPECT_EQ(fq(a, p), p.grid_min());
  EXPECT_NEAR(p.grid_max(), 3.0f, p.scale / 2);
  EXPECT_NEAR(p.grid_min(), -1.0f, p.scale / 2);
  EXPECT_TRUE(std::isnan(fq(std::numeric_limits<float>::quiet_NaN(), p)));
  // Zero is on the grid whenever the range contains it; fake quantization is idempotent.
  EXPECT_EQ(fq(0.0f, p), 0.0f);
  for (float a : random_values(1000, -2.0f, 4.0f, 3)) EXPECT_EQ(fq(fq(a, p), p), fq(a, p));
}

TEST(ActivationQuant, ZeroWidthRangesStaySane) {
  for (float c : {2.5f, -1.5f}) {
    const ActivationQuantParams p = ActivationQuantParams::from_range({c, c}, 8);
    EXPECT_GT(p.scale, 0.0f);
    EXPECT_NEAR(fq(c, p), c, 1e-6f * std::fabs(c));
    EXPECT_EQ(fq(0.0f, p), 0.0f);  // widened to include 0
  }
  const ActivationQuantParams zero = ActivationQuantParams::from_range({0.0f, 0.0f}, 8);
  EXPECT_EQ(zero.scale, 1.0f);
  EXPECT_EQ(zero.zero_point, 0);
  EXPECT_EQ(fq(0.0f, zero), 0.0f);
  EXPECT_TRUE(std::isfinite(fq(123.0f, zero)));
}

TEST(ActivationQuant, TensorEntryPointHandlesLayoutAndDtype) {
  const ActivationQuantParams p = ActivationQuantParams::from_range({-1.0f, 1.0f}, 4);
  const std::vector<float> values = random_values(24, -1.5f, 1.5f, 11);
  const Tensor x = Tensor::from_vector(values, {2, 3, 4});
  const Tensor y = fake_quantize_activation(x, p);
  EXPECT_EQ(y.shape(), x.shape());
  EXPECT_EQ(y.dtype(), DType::kF32);
  EXPECT_FALSE(y.shares_storage_with(x));
  const std::vector<float> got = y.to_float_vector();
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(got[i], fq(values[i], p));
  // A permuted (strided) view quantizes elementwise in its own order.
  const Tensor xt = x.permute({2, 0, 1});
  EXPECT_EQ(fake_quantize_activation(xt, p).to_float_vector(),
            fake_quantize_activation(xt.contiguous(), p).to_float_vector());
  // bf16 input comes back f32.
  const Tensor xb = x.to(DType::kBF16);
  EXPECT_EQ(fake_quantize_activation(xb, p).to_float_vector(),
            fake_quantize_activation(xb.to(DType::kF32), p).to_float_vector());
}

// Each row over the last dim: the per-tensor fake quantization with that row's range [min(0, min), max(0, max)].
TEST(ActivationQuant, PerTokenQuantizesEachRowWithItsOwnRange) {
  constexpr int64_t K = 37;
  std::vector<float> values = random_values(2 * 3 * K, -2.0f, 3.0f, 21);
  for (int64_t k = 0; k < K; ++k) {
    values[1 * K + k] = 100.0f * values[1 * K + k];  // an outlier token: its neighbours keep their resolution
    values[2 * K + k] = 0.0f;                        // all zero
    values[3 * K + k] = -0.5f - 0.01f * k;           // only negative values
    values[4 * K + k] = 4.0f;                        // constant
  }
  values[5 * K + 7] = NAN;
  const Tensor x = Tensor::from_vector(values, {2, 3, K});
  for (int bits : {8, 4, 2}) {
    const Tensor y = fake_quantize_per_token(x, bits);
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_EQ(y.dtype(), DType::kF32);
    const std::vector<float> got = y.to_float_vector();
    for (int64_t r = 0; r < 6; ++r) {
      ActivationRange range;
      for (int64_t k = 0; k < K; ++k) {
        const float v = values[r * K + k];
        if (std::isnan(v)) continue;
        range.min = std::min(range.min, v);
        range.max = std::max(range.max, v);
      }
      const ActivationQuantParams p = ActivationQuantParams::from_range(range, bits);
      for (int64_t k = 0; k < K; ++k) {
        const float want = fq(values[r * K + k], p);
        if (std::isnan(want)) {
          EXPECT_TRUE(std::isnan(got[r * K + k])) << "NaN stays NaN";
          continue;
        }
        ASSERT_EQ(got[r * K + k], want) << bits << " bits, row " << r << ", k " << k;
        ASSERT_LE(std::fabs(got[r * K + k] - values[r * K + k]),
                  p.scale / 2 * (1 + 1e-5) + 1e-6 * std::fabs(values[r * K + k]));
      }
    }
    for (int64_t k = 0; k < K; ++k) EXPECT_EQ(got[2 * K + k], 0.0f);
    EXPECT_NEAR(got[4 * K], 4.0f, 1e-6f);
  }
  // A strided view and bf16 input come out as their contiguous f32 copies do (bit for bit: the NaN included).
  const auto bits_of = [](const Tensor& t) {
    const std::vector<float> v = t.to_float_vector();
    std::vector<uint32_t> bits(v.size());
    std::memcpy(bits.data(), v.data(), v.size() * sizeof(float));
    return bits;
  };
  const Tensor xt = x.permute({1, 0, 2});
  EXPECT_EQ(bits_of(fake_quantize_per_token(xt, 8)), bits_of(fake_quantize_per_token(xt.contiguous(), 8)));
  const Tensor xb = x.to(DType::kBF16);
  EXPECT_EQ(bits_of(fake_quantize_per_token(xb, 8)), bits_of(fake_quantize_per_token(xb.to(DType::kF32), 8)));
  // An infinity has no finite range.
  values[3] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(fake_quantize_per_token(Tensor::from_vector(values, {6, K}), 8), Error);
  EXPECT_THROW(fake_quantize_per_token(x, 1), Error);
}

}  // namespace
}  // namespace bertforge
