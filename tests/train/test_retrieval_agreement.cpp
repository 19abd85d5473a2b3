// Retrieval agreement (train/retrieval_agreement.h): closed-form cases worked out by hand (points on a circle,
// ties among duplicate rows), invariances (identical and rescaled embeddings agree fully), a brute-force
// reference on random data, and the argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/match.h"
#include "tests/support/test_support.h"
#include "train/retrieval_agreement.h"

namespace bertforge {
namespace {

using namespace test_support;

// Unit vectors at these angles (degrees), one row each: (N,2).
Tensor on_circle(const std::vector<double>& degrees) {
  std::vector<float> values;
  for (double d : degrees) {
    values.push_back(static_cast<float>(std::cos(d * M_PI / 180)));
    values.push_back(static_cast<float>(std::sin(d * M_PI / 180)));
  }
  return Tensor::from_vector(values, {static_cast<int64_t>(degrees.size()), 2});
}

RetrievalAgreement agreement(const Tensor& a, const Tensor& b, int64_t k) {
  const absl::StatusOr<RetrievalAgreement> result = retrieval_agreement(a, b, k);
  BF_CHECK(result.ok(), result.status().ToString());
  return *result;
}

TEST(RetrievalAgreement, IdenticalAndRescaledEmbeddingsAgreeFully) {
  const Tensor a = random_tensor({40, 16}, 1);
  RetrievalAgreement r = agreement(a, a, 10);
  EXPECT_EQ(r.top_k_overlap, 1.0);
  EXPECT_NEAR(r.mean_cosine, 1.0, 1e-12);
  EXPECT_EQ(r.k, 10);
  EXPECT_EQ(r.sentences, 40);

  // Cosines ignore each row's length.
  std::vector<float> scaled = a.to_float_vector();
  for (size_t i = 0; i < scaled.size(); ++i) scaled[i] *= 0.5f + static_cast<float>(i / 16);
  r = agreement(a, Tensor::from_vector(scaled, {40, 16}), 10);
  EXPECT_EQ(r.top_k_overlap, 1.0);
  EXPECT_NEAR(r.mean_cosine, 1.0, 1e-6);
}

// A at 0, 10, 30, 100 degrees; B moves the second point to 25. Nearest neighbour (k = 1): under A 1, 0, 1, 2;
// under B 1, 2, 1, 2: sentence 1 alone changes, overlap 3/4. With k = 2 every set stays the same: under A
// {1,2} {0,2} {0,1} {1,2}, under B too. Mean cosine: (3 + cos 15) / 4 either way.
TEST(RetrievalAgreement, PointsOnACircle) {
  const Tensor a = on_circle({0, 10, 30, 100}), b = on_circle({0, 25, 30, 100});
  const double cosine = (3 + std::cos(15 * M_PI / 180)) / 4;
  RetrievalAgreement r = agreement(a, b, 1);
  EXPECT_DOUBLE_EQ(r.top_k_overlap, 0.75);
  EXPECT_NEAR(r.mean_cosine, cosine, 1e-6);
  r = agreement(a, b, 2);
  EXPECT_DOUBLE_EQ(r.top_k_overlap, 1.0);
  EXPECT_NEAR(r.mean_cosine, cosine, 1e-6);
}

// Ties go to the lower index. A: row 0 = (1,0), rows 1-3 = (1,1), so row 0 has three equal neighbours and takes
// {1,2}; rows 1-3 each take the other two. B moves row 1 to (0,1): row 0 -> {2,3} (cosine 0 to row 1); row 1 ->
// {2,3}; row 2 -> row 3, then the tie between rows 0 and 1 (both 1/sqrt 2) -> {0,3}; row 3 -> {0,2}.
// Overlaps 1/2, 1, 1/2, 1/2: mean 5/8. Mean cosine (3 + 1/sqrt 2) / 4.
TEST(RetrievalAgreement, TiesGoToTheLowerIndex) {
  const Tensor a = Tensor::from_vector<float>({1, 0, 1, 1, 1, 1, 1, 1}, {4, 2});
  const Tensor b = Tensor::from_vector<float>({1, 0, 0, 1, 1, 1, 1, 1}, {4, 2});
  const RetrievalAgreement r = agreement(a, b, 2);
  EXPECT_DOUBLE_EQ(r.top_k_overlap, 0.625);
  EXPECT_NEAR(r.mean_cosine, (3 + 1 / std::sqrt(2.0)) / 4, 1e-12);
}

// k above N - 1 is cut to N - 1: every other sentence is a neighbour, so the overlap is 1 whatever B is.
TEST(RetrievalAgreement, KIsAtMostTheOtherSentences) {
  const RetrievalAgreement r = agreement(random_tensor({5, 3}, 2), random_tensor({5, 3}, 3), 10);
  EXPECT_EQ(r.k, 4);
  EXPECT_EQ(r.top_k_overlap, 1.0);
}

// A zero row has cosine 0 with every other row; two zero rows count as cosine 1 between A and B.
TEST(RetrievalAgreement, ZeroRows) {
  const Tensor a = Tensor::from_vector<float>({0, 0, 1, 0, 0, 1}, {3, 2});
  const Tensor b = Tensor::from_vector<float>({0, 0, 1, 0, 1, 1}, {3, 2});
  const RetrievalAgreement r = agreement(a, b, 1);
  // A: every cosine is 0, so ties: row 0 -> 1, row 1 -> 0, row 2 -> 0. B: row 0 -> 1 (a tie); row 1 -> 2 and
  // row 2 -> 1 (cosine 1/sqrt 2). Overlaps 1, 0, 0.
  EXPECT_DOUBLE_EQ(r.top_k_overlap, 1.0 / 3);
  EXPECT_NEAR(r.mean_cosine, (1 + 1 + 1 / std::sqrt(2.0)) / 3, 1e-12);
}

// The top-k of row i of x by a full sort, the same order (cosine descending, then index).
std::vector<int64_t> brute_force_top_k(const std::vector<float>& x, int64_t N, int64_t D, int64_t i, int64_t k) {
  std::vector<std::pair<double, int64_t>> all;
  for (int64_t j = 0; j < N; ++j) {
    if (j == i) continue;
    double xy = 0, xx = 0, yy = 0;
    for (int64_t d = 0; d < D; ++d) {
      xy += double(x[i * D + d]) * x[j * D + d];
      xx += double(x[i * D + d]) * x[i * D + d];
      yy += double(x[j * D + d]) * x[j * D + d];
    }
    all.emplace_back(-xy / std::sqrt(xx * yy), j);
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> top;
  for (int64_t n = 0; n < k; ++n) top.push_back(all[n].second);
  std::sort(top.begin(), top.end());
  return top;
}

TEST(RetrievalAgreement, MatchesBruteForceOnRandomData) {
  const int64_t N = 60, D = 12, k = 7;
  const std::vector<float> a = random_values(N * D, -1, 1, 4);
  std::vector<float> b = random_values(N * D, -0.4f, 0.4f, 5);
  for (int64_t i = 0; i < N * D; ++i) b[i] += a[i];
  double overlap = 0, cosine = 0;
  for (int64_t i = 0; i < N; ++i) {
    const std::vector<int64_t> near_a = brute_force_top_k(a, N, D, i, k), near_b = brute_force_top_k(b, N, D, i, k);
    std::vector<int64_t> shared;
    std::set_intersection(near_a.begin(), near_a.end(), near_b.begin(), near_b.end(), std::back_inserter(shared));
    overlap += static_cast<double>(shared.size()) / k;
    double ab = 0, aa = 0, bb = 0;
    for (int64_t d = 0; d < D; ++d) {
      ab += double(a[i * D + d]) * b[i * D + d];
      aa += double(a[i * D + d]) * a[i * D + d];
      bb += double(b[i * D + d]) * b[i * D + d];
    }
    cosine += ab / std::sqrt(aa * bb);
  }
  const RetrievalAgreement r = agreement(Tensor::from_vector(a, {N, D}), Tensor::from_vector(b, {N, D}), k);
  EXPECT_DOUBLE_EQ(r.top_k_overlap, overlap / N);
  EXPECT_NEAR(r.mean_cosine, cosine / N, 1e-12);
  EXPECT_GT(r.top_k_overlap, 0.3);  // the noise moves some neighbours, not all
  EXPECT_LT(r.top_k_overlap, 1.0);
}

TEST(RetrievalAgreement, RejectsBadArguments) {
  const Tensor a = random_tensor({4, 3}, 6);
  const auto message = [](const Tensor& x, const Tensor& y, int64_t k) {
    const absl::StatusOr<RetrievalAgreement> r = retrieval_agreement(x, y, k);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : std::string(r.status().message());
  };
  EXPECT_TRUE(absl::StrContains(message(a, random_tensor({4, 2}, 7), 2), "one shape"));
  EXPECT_TRUE(absl::StrContains(message(random_tensor({1, 3}, 7), random_tensor({1, 3}, 8), 2), "at least 2"));
  EXPECT_TRUE(absl::StrContains(message(a, a, 0), "top_k"));
  std::vector<float> with_nan = a.to_float_vector();
  with_nan[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(absl::StrContains(message(a, Tensor::from_vector(with_nan, {4, 3}), 2), "B[1, 2]"));
}

}  // namespace
}  // namespace bertforge
