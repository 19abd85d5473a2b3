// Token-Wise Clipping (quant/tokenwise_clipping.h) against independent references:
//   - sorted_quantile against the closed form of linear interpolation on sorted arrays;
//   - the output error E against a double-precision loop (both the W path, N <= K, and the Cholesky factor path,
//     N > K, including a rank-deficient W that falls back to W);
//   - the coarse stage against a brute-force evaluation of its own candidates (quantiles recomputed here from the
//     per-token extremes of every calibration token, E from the loop), with the quantiles from 4x more tokens than
//     the sample E is measured on, padding rows masked out;
//   - the fine stage against a dense brute force over every quantizer (below) on 64 tokens x 16 channels with 3
//     outlier tokens, W (8,16), 4 bits: within 1.02x of the best, and well below min-max;
//   - Gaussian data without outliers: never worse than min-max; zero-error edge cases; validation errors.
//
// The brute force. E depends on a range only through its quantizer (scale s, zero point z), and the ranges the
// algorithm considers contain 0, so z is an integer in [0, Q]. Enumerating z = 0..Q and s on a uniform grid of
// 4000 steps up to the min-max range's scale therefore covers every (lo, hi) = (-z s, (Q - z) s) pair at a
// resolution of 1/4000 in s, denser than a uniform (lo, hi) grid of the same 64000 points (which is searched
// too).
//
// Tolerances: E here is computed in double from the same float fake-quantized values; the implementation's GEMM
// and sums are float, hence relative 1e-5 (1e-4 on the factor path, whose float factor rounds differently).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "quant/tokenwise_clipping.h"

namespace bertforge::quant {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Matrix {
  std::vector<float> v;
  int64_t rows = 0, cols = 0;
  Tensor tensor() const { return Tensor::from_vector(v, {rows, cols}); }
};

Matrix gaussian(int64_t rows, int64_t cols, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  Matrix m{std::vector<float>(static_cast<size_t>(rows * cols)), rows, cols};
  for (float& x : m.v) x = normal(rng);
  return m;
}

// 64 tokens x 16 channels of N(0, 1) with 3 outlier tokens, one of them negative: their extremes are 8-25x the
// others'.
Matrix outlier_tokens() {
  Matrix x = gaussian(64, 16, 1.0f, 11);
  x.v[5 * 16 + 3] = 25.0f;
  x.v[5 * 16 + 9] = 14.0f;
  x.v[20 * 16 + 7] = -18.0f;
  x.v[41 * 16 + 0] = 31.0f;
  return x;
}

// fq(x) by the closed form of quant/activation_quant.h, in float like the kernel.
float fake_quant(float x, const ActivationQuantParams& p) {
  const float z = static_cast<float>(p.zero_point);
  const float q = std::clamp(std::nearbyint(x / p.scale) + z, 0.0f, static_cast<float>(p.qmax()));
  return (q - z) * p.scale;
}

// E = sum_{t,j} (sum_k (fq(x_tk) - x_tk) w_jk)^2 in double.
double reference_error(const Matrix& x, const Matrix& w, const ActivationQuantParams& p) {
  std::vector<double> d(x.v.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<double>(fake_quant(x.v[i], p)) - x.v[i];
  double e = 0;
  for (int64_t t = 0; t < x.rows; ++t) {
    for (int64_t j = 0; j < w.rows; ++j) {
      double y = 0;
      for (int64_t k = 0; k < x.cols; ++k) y += d[t * x.cols + k] * w.v[j * w.cols + k];
      e += y * y;
    }
  }
  return e;
}
double reference_error(const Matrix& x, const Matrix& w, const ActivationRange& range, int bits) {
  return reference_error(x, w, ActivationQuantParams::from_range(range, bits));
}

TokenwiseClippingOptions with_bits(int bits) {
  TokenwiseClippingOptions options;
  options.bits = bits;
  return options;
}

// Linear interpolation at q (T - 1) of a copy of v, sorted here.
double quantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double p = q * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(p));
  return i + 1 >= v.size() ? v.back() : v[i] + (p - std::floor(p)) * (static_cast<double>(v[i + 1]) - v[i]);
}

TEST(TokenwiseClipping, SortedQuantileMatchesTheClosedForm) {
  const std::vector<float> small = {1.0f, 2.0f, 3.0f, 10.0f};  // positions q * 3
  EXPECT_DOUBLE_EQ(sorted_quantile(small, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(sorted_quantile(small, 1.0), 10.0);
  EXPECT_DOUBLE_EQ(sorted_quantile(small, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(sorted_quantile(small, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(sorted_quantile(small, 0.9), 3.0 + 0.7 * 7.0);
  EXPECT_DOUBLE_EQ(sorted_quantile({4.5f}, 0.3), 4.5);
  // An arithmetic sequence a + i h, i < T: Q_q = a + q (T - 1) h.
  std::vector<float> line;
  for (int i = 0; i < 1001; ++i) line.push_back(-3.0f + 0.25f * static_cast<float>(i));
  for (double q : {0.0, 1e-4, 0.001, 0.01, 0.37, 0.5, 0.99, 0.999, 0.9999, 1.0}) {
    EXPECT_NEAR(sorted_quantile(line, q), -3.0 + q * 1000.0 * 0.25, 1e-9) << q;
  }
  EXPECT_THROW(sorted_quantile({}, 0.5), Error);
  EXPECT_THROW(sorted_quantile(small, 1.5), Error);
}

TEST(TokenwiseClipping, DefaultGridFollowsTheReference) {
  const std::vector<double> g8 = default_clipping_quantiles(8);
  ASSERT_EQ(g8.size(), 12u);  // 1, 0.9999, 0.999, then 0.99 .. 0.91
  EXPECT_EQ(g8[0], 1.0);
  EXPECT_EQ(g8[1], 0.9999);
  EXPECT_EQ(g8[2], 0.999);
  EXPECT_NEAR(g8.back(), 0.91, 1e-12);
  EXPECT_TRUE(std::is_sorted(g8.rbegin(), g8.rend()));
  EXPECT_EQ(default_clipping_quantiles(7).size(), 32u);
  EXPECT_NEAR(default_clipping_quantiles(6).back(), 0.71, 1e-12);
  EXPECT_NEAR(default_clipping_quantiles(4).back(), 0.11, 1e-12);
  EXPECT_EQ(default_clipping_quantiles(2).size(), 92u);
}

TEST(TokenwiseClipping, ErrorMatchesADoublePrecisionReference) {
  const Matrix x = outlier_tokens();
  Matrix rank_deficient = gaussian(48, 16, 0.3f, 5);  // N > K but column 4 is zero: W^T W is singular
  for (int64_t n = 0; n < 48; ++n) rank_deficient.v[n * 16 + 4] = 0.0f;
  for (const Matrix& w : {gaussian(8, 16, 0.3f, 3), gaussian(48, 16, 0.3f, 4), rank_deficient}) {
    for (int bits : {8, 4}) {
      for (const ActivationRange range : {ActivationRange{-18.0f, 31.0f}, ActivationRange{-2.5f, 2.0f},
                                          ActivationRange{-0.7f, 3.1f}}) {
        const double want = reference_error(x, w, range, bits);
        const absl::StatusOr<double> got = clipping_output_error(x.tensor(), w.tensor(), range, bits);
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_NEAR(*got, want, (w.rows > w.cols ? 1e-4 : 1e-5) * want)
            << "W " << w.rows << "x" << w.cols << ", " << bits << " bits, [" << range.min << ", " << range.max << "]";
      }
    }
  }
}

TEST(TokenwiseClipping, TokenExtremesKeepRealTokensOnly) {
  // (B,T,K) = (2,3,4); the mask drops the last token of each sequence.
  std::vector<float> v(24);
  for (int i = 0; i < 24; ++i) v[i] = static_cast<float>((i * 7) % 11) - 5.0f;
  TokenExtremes extremes(4);
  const std::vector<float> mask = {1, 1, 0, 1, 1, 0};
  extremes.observe(Tensor::from_vector(v, {2, 3, 4}), Tensor::from_vector(mask, {2, 3}));
  ASSERT_EQ(extremes.tokens(), 4);
  size_t token = 0;
  for (int row : {0, 1, 3, 4}) {
    const auto [lo, hi] = std::minmax_element(v.begin() + row * 4, v.begin() + row * 4 + 4);
    EXPECT_EQ(extremes.maxima()[token], *hi) << row;
    EXPECT_EQ(extremes.minima()[token], *lo) << row;
    ++token;
  }
  // Without a mask every row counts; a row with a NaN records NaN.
  v[2] = kNaN;
  extremes.observe(Tensor::from_vector(v, {6, 4}));
  ASSERT_EQ(extremes.tokens(), 10);
  EXPECT_TRUE(std::isnan(extremes.maxima()[4]) && std::isnan(extremes.minima()[4]));
  EXPECT_EQ(extremes.maxima()[5], *std::max_element(v.begin() + 4, v.begin() + 8));
  EXPECT_THROW(extremes.observe(Tensor::zeros({2, 5})), Error);
}

TEST(TokenwiseClipping, CoarseStageIsTheBestOfItsCandidates) {
  // 4 sequences of 64 tokens; sequence s scales the outlier pattern by 1 + s / 4, the last 8 tokens of each are
  // padding with huge values that must not count. The sample for E is sequence 0's real tokens.
  const Matrix base = outlier_tokens();
  std::vector<float> all;
  std::vector<float> mask;
  std::vector<float> maxima, minima;  // of the real tokens, computed here
  for (int s = 0; s < 4; ++s) {
    for (int64_t t = 0; t < 64; ++t) {
      const bool real = t < 56;
      float hi = -1e30f, lo = 1e30f;
      for (int64_t k = 0; k < 16; ++k) {
        const float value = real ? base.v[t * 16 + k] * (1.0f + 0.25f * static_cast<float>(s)) : 1e4f;
        all.push_back(value);
        hi = std::max(hi, value);
        lo = std::min(lo, value);
      }
      mask.push_back(real ? 1.0f : 0.0f);
      if (real) {
        maxima.push_back(hi);
        minima.push_back(lo);
      }
    }
  }
  TokenExtremes extremes(16);
  extremes.observe(Tensor::from_vector(all, {4, 64, 16}), Tensor::from_vector(mask, {4, 64}));
  const Matrix sample{std::vector<float>(base.v.begin(), base.v.begin() + 56 * 16), 56, 16};
  const Matrix w = gaussian(8, 16, 0.3f, 3);

  for (int bits : {8, 6, 4}) {
    const absl::StatusOr<TokenwiseClippingResult> r =
        tokenwise_clipping(sample.tensor(), w.tensor(), extremes, with_bits(bits));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->calibration_tokens, 224);
    EXPECT_EQ(r->sample_tokens, 56);
    ASSERT_EQ(r->quantiles, default_clipping_quantiles(bits));
    ASSERT_EQ(r->coarse_errors.size(), r->quantiles.size());
    // Min-max over every real token.
    EXPECT_EQ(r->minmax_range.max, *std::max_element(maxima.begin(), maxima.end()));
    EXPECT_EQ(r->minmax_range.min, *std::min_element(minima.begin(), minima.end()));
    EXPECT_NEAR(r->minmax_error, reference_error(sample, w, r->minmax_range, bits), 1e-5 * r->minmax_error);
    // Every candidate's error, and the choice.
    double best = std::numeric_limits<double>::infinity();
    size_t best_at = 0;
    for (size_t i = 0; i < r->quantiles.size(); ++i) {
      const double alpha = r->quantiles[i];
      const ActivationRange candidate{static_cast<float>(std::min(quantile(minima, 1.0 - alpha), 0.0)),
                                      static_cast<float>(std::max(quantile(maxima, alpha), 0.0))};
      const double e = reference_error(sample, w, candidate, bits);
      EXPECT_NEAR(r->coarse_errors[i], e, 1e-5 * e) << bits << " bits, alpha " << alpha;
      if (e < best) {
        best = e;
        best_at = i;
      }
      if (alpha == r->coarse_quantile) {
        EXPECT_NEAR(r->coarse_range.min, candidate.min, 1e-6f * std::fabs(candidate.min)) << alpha;
        EXPECT_NEAR(r->coarse_range.max, candidate.max, 1e-6f * std::fabs(candidate.max)) << alpha;
        EXPECT_NEAR(r->coarse_error, e, 1e-5 * e);
      }
    }
    EXPECT_LE(reference_error(sample, w, r->coarse_range, bits), best * (1 + 1e-5))
        << bits << " bits: chose alpha " << r->coarse_quantile << ", the brute force " << r->quantiles[best_at];
    EXPECT_LT(r->coarse_quantile, 1.0) << bits << " bits: the outlier tokens should be clipped";
    EXPECT_LE(r->fine_error, r->coarse_error);
    EXPECT_LE(r->coarse_error, r->minmax_error);
  }
}

TEST(TokenwiseClipping, FineStageIsNearTheBruteForceOptimum) {
  const Matrix x = outlier_tokens();
  const Matrix w = gaussian(8, 16, 0.3f, 3);
  constexpr int kBits = 4;
  const absl::StatusOr<TokenwiseClippingResult> r = tokenwise_clipping(x.tensor(), w.tensor(), with_bits(kBits));
  ASSERT_TRUE(r.ok()) << r.status();

  // Brute force over every quantizer (file comment).
  const ActivationQuantParams minmax = ActivationQuantParams::from_range(r->minmax_range, kBits);
  constexpr int kSteps = 4000;
  double brute = std::numeric_limits<double>::infinity();
  for (int32_t z = 0; z <= minmax.qmax(); ++z) {
    for (int i = 1; i <= kSteps; ++i) {
      ActivationQuantParams p;
      p.bits = kBits;
      p.zero_point = z;
      p.scale = minmax.scale * static_cast<float>(i) / kSteps;
      brute = std::min(brute, reference_error(x, w, p));
    }
  }
  // And the plain uniform grid of (lo, hi) pairs over the min-max range, 256 x 256.
  for (int i = 0; i < 256; ++i) {
    for (int j = 0; j < 256; ++j) {
      const ActivationRange range{r->minmax_range.min * static_cast<float>(i) / 255,
                                  r->minmax_range.max * static_cast<float>(j) / 255};
      brute = std::min(brute, reference_error(x, w, range, kBits));
    }
  }
  const double fine = reference_error(x, w, r->range, kBits);
  EXPECT_NEAR(r->fine_error, fine, 1e-5 * fine);
  EXPECT_LE(fine, 1.02 * brute) << "fine " << fine << ", brute force " << brute << ", coarse " << r->coarse_error;
  EXPECT_LT(fine, 0.6 * r->minmax_error);  // 0.53: [-2.5, 19.3] of [-18, 31] clips 3 of the 4 outlier values
  EXPECT_LT(r->fine_error, r->coarse_error);  // 362.4 < 370.5: the fine stage moves lo from -2.98 to -2.49
  EXPECT_LE(r->range.min, 0.0f);
  EXPECT_GE(r->range.max, 0.0f);
  EXPECT_EQ(r->params.scale, ActivationQuantParams::from_range(r->range, kBits).scale);
}

TEST(TokenwiseClipping, GaussianDataIsNotMadeWorse) {
  const Matrix x = gaussian(512, 32, 1.0f, 21);
  for (const Matrix& w : {gaussian(16, 32, 0.2f, 22), gaussian(96, 32, 0.2f, 23)}) {  // the W and factor paths
    for (int bits : {8, 6, 4}) {
      const absl::StatusOr<TokenwiseClippingResult> r = tokenwise_clipping(x.tensor(), w.tensor(), with_bits(bits));
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_LE(r->fine_error, r->coarse_error) << bits;
      EXPECT_LE(r->coarse_error, r->minmax_error) << bits;
      EXPECT_LE(reference_error(x, w, r->range, bits), reference_error(x, w, r->minmax_range, bits) * (1 + 1e-4));
    }
  }
}

TEST(TokenwiseClipping, ZeroErrorEdgeCases) {
  const Matrix w = gaussian(8, 16, 0.3f, 3);
  // All-zero input: the range [0, 0], nothing to lose.
  const absl::StatusOr<TokenwiseClippingResult> zero =
      tokenwise_clipping(Tensor::zeros({32, 16}), w.tensor(), TokenwiseClippingOptions{});
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->range.min, 0.0f);
  EXPECT_EQ(zero->range.max, 0.0f);
  EXPECT_EQ(zero->minmax_error, 0.0);
  EXPECT_EQ(zero->fine_error, 0.0);
  // A constant input c > 0: the range [0, c] puts c on the grid's end (to float rounding).
  const absl::StatusOr<TokenwiseClippingResult> constant =
      tokenwise_clipping(Tensor::full({32, 16}, 0.75f), w.tensor(), TokenwiseClippingOptions{});
  ASSERT_TRUE(constant.ok()) << constant.status();
  EXPECT_EQ(constant->minmax_range.min, 0.0f);
  EXPECT_EQ(constant->minmax_range.max, 0.75f);
  EXPECT_LE(constant->fine_error, 1e-10);
  // W = 0: every range costs 0, so every tie keeps the first candidate: alpha = 1, the min-max range.
  const Matrix x = outlier_tokens();
  const absl::StatusOr<TokenwiseClippingResult> no_weight =
      tokenwise_clipping(x.tensor(), Tensor::zeros({8, 16}), with_bits(4));
  ASSERT_TRUE(no_weight.ok()) << no_weight.status();
  EXPECT_EQ(no_weight->coarse_quantile, 1.0);
  EXPECT_EQ(no_weight->range.min, no_weight->minmax_range.min);
  EXPECT_EQ(no_weight->range.max, no_weight->minmax_range.max);
  EXPECT_EQ(no_weight->fine_error, 0.0);
}

TEST(TokenwiseClipping, RejectsBadOptionsAndInputs) {
  const Matrix x = outlier_tokens();
  const Tensor X = x.tensor(), W = gaussian(8, 16, 0.3f, 3).tensor();
  // Each bad field alone: validate() and tokenwise_clipping say InvalidArgument.
  const auto rejected = [&](void (*edit)(TokenwiseClippingOptions&)) {
    TokenwiseClippingOptions options;
    edit(options);
    return !options.validate().ok() &&
           tokenwise_clipping(X, W, options).status().code() == absl::StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.bits = 1; }));
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.bits = 9; }));
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.quantiles = {1.0, 0.0}; }));
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.quantiles = {1.5}; }));
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.quantiles = {std::nan("")}; }));
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.fine_rounds = -1; }));
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.fine_steps = 0; }));
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.fine_span = -0.5; }));
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.fine_span = std::nan(""); }));
  EXPECT_TRUE(rejected([](TokenwiseClippingOptions& o) { o.fine_span = 0.0; }));
  TokenwiseClippingOptions coarse_only = with_bits(2);
  coarse_only.fine_rounds = 0;
  EXPECT_TRUE(coarse_only.validate().ok());

  const TokenwiseClippingOptions options;
  const auto message = [&](const Tensor& X_, const Tensor& W_) {
    const absl::Status status = tokenwise_clipping(X_, W_, options).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return std::string(status.message());
  };
  EXPECT_NE(message(Tensor::zeros({0, 16}), W).find("empty"), std::string::npos);
  EXPECT_NE(message(Tensor::zeros({16}), W).find("(n,K)"), std::string::npos);
  EXPECT_NE(message(X, Tensor::zeros({8, 15})).find("input channels"), std::string::npos);
  EXPECT_NE(message(X.to(DType::kBF16), W).find("f32"), std::string::npos);
  Matrix nan_x = x;
  nan_x.v[100] = kNaN;
  EXPECT_NE(message(nan_x.tensor(), W).find("X holds NaN"), std::string::npos);
  Matrix inf_w = gaussian(8, 16, 0.3f, 3);
  inf_w.v[3] = std::numeric_limits<float>::infinity();
  EXPECT_NE(message(X, inf_w.tensor()).find("W holds NaN"), std::string::npos);

  TokenExtremes wrong_channels(8);
  wrong_channels.observe(Tensor::zeros({4, 8}));
  EXPECT_EQ(tokenwise_clipping(X, W, wrong_channels, options).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tokenwise_clipping(X, W, TokenExtremes(16), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  TokenExtremes nan_extremes(16);
  nan_extremes.observe(nan_x.tensor());
  const absl::Status nan_status = tokenwise_clipping(X, W, nan_extremes, options).status();
  EXPECT_EQ(nan_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(nan_status.message().find("not finite"), std::string::npos) << nan_status;

  EXPECT_EQ(clipping_output_error(X, W, {1.0f, -1.0f}, 8).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(clipping_output_error(X, W, {-1.0f, 1.0f}, 9).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bertforge::quant
