// tests/ops/test_cross_entropy.cpp — cross_entropy against a double-precision
// reference (logits up to +-100 and a BERT-sized vocabulary), ignore_index rows
// (excluded from the mean, zero gradient), the all-ignored case, gradcheck and
// target validation.
//
// Tolerances, from float rounding of the kernel's steps:
//   loss:      |got - ref| <= 1e-6 * |ref| + 1e-7
//   dlogits:   |got - ref| <= (1/kept) * (16 * eps * (1 + max|logit of the row|) * softmax + 2 * eps)
//              (the float logsumexp carries an absolute error ~ eps * |lse|, which
//              becomes a relative error of every softmax value), eps = 2^-23.
#include "ops/cross_entropy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

struct Reference {
  double loss = 0.0;
  std::vector<double> dlogits;  // of the mean loss
  std::vector<double> softmax;
  int64_t kept = 0;
};

Reference ReferenceCrossEntropy(const std::vector<float>& logits, const std::vector<int64_t>& targets,
                                int64_t classes, int64_t ignore_index) {
  const int64_t rows = static_cast<int64_t>(targets.size());
  Reference ref;
  ref.dlogits.assign(rows * classes, 0.0);
  ref.softmax.assign(rows * classes, 0.0);
  for (int64_t t : targets) ref.kept += t != ignore_index;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] == ignore_index) continue;
    const float* row = logits.data() + r * classes;
    const double max = *std::max_element(row, row + classes);
    double sum = 0.0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(row[c] - max);
    const double lse = max + std::log(sum);
    ref.loss += (lse - row[targets[r]]) / ref.kept;
    for (int64_t c = 0; c < classes; ++c) {
      ref.softmax[r * classes + c] = std::exp(row[c] - lse);
      ref.dlogits[r * classes + c] = (ref.softmax[r * classes + c] - (c == targets[r])) / ref.kept;
    }
  }
  return ref;
}

// Runs forward and backward (dL = 1) and compares both with the reference.
void ExpectMatchesReference(const std::vector<float>& logit_values, const std::vector<int64_t>& target_values,
                            int64_t classes, int64_t ignore_index, const std::string& what) {
  const int64_t rows = static_cast<int64_t>(target_values.size());
  Tensor logits = leaf(logit_values, {rows, classes});
  const Tensor loss = cross_entropy(logits, Tensor::from_vector(target_values, {rows}), ignore_index);
  ASSERT_EQ(loss.dim(), 0) << what;
  const Reference ref = ReferenceCrossEntropy(logit_values, target_values, classes, ignore_index);
  const float got = loss.item<float>();
  EXPECT_NEAR(got, ref.loss, 1e-6 * std::fabs(ref.loss) + 1e-7) << what;

  autograd::backward(loss);
  const std::vector<float> grad = logits.grad().to_float_vector();
  int failures = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logit_values.data() + r * classes;
    float max_abs = 0.0f;
    for (int64_t c = 0; c < classes; ++c) max_abs = std::max(max_abs, std::fabs(row[c]));
    for (int64_t c = 0; c < classes; ++c) {
      const int64_t k = r * classes + c;
      if (target_values[r] == ignore_index) {
        if (grad[k] != 0.0f && ++failures <= 5) ADD_FAILURE() << what << ": ignored row " << r << " has gradient";
        continue;
      }
      const double tolerance = (16 * FLT_EPSILON * (1 + max_abs) * ref.softmax[k] + 2 * FLT_EPSILON) / ref.kept;
      if (!(std::fabs(grad[k] - ref.dlogits[k]) <= tolerance) && ++failures <= 5) {
        ADD_FAILURE() << what << ": dlogits(" << r << ", " << c << ") = " << grad[k] << ", expected "
                      << ref.dlogits[k] << " (tolerance " << tolerance << ")";
      }
    }
  }
  EXPECT_EQ(failures, 0) << what;
}

std::vector<int64_t> RandomTargets(int64_t rows, int64_t classes, double ignore_fraction, int64_t ignore_index,
                                   uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, classes - 1);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::vector<int64_t> targets(rows);
  for (int64_t& t : targets) t = coin(rng) < ignore_fraction ? ignore_index : pick(rng);
  return targets;
}

TEST(CrossEntropy, MatchesDoubleReference) {
  const int64_t rows = 64, classes = 50;
  const float ranges[] = {1.0f, 10.0f, 100.0f};  // logits uniform in [-range, range]
  for (float range : ranges) {
    ExpectMatchesReference(random_values(rows * classes, -range, range, 1), RandomTargets(rows, classes, 0.3, -100, 2),
                           classes, -100, "range " + std::to_string(range));
  }
}

// Logits far from 0 on both sides, a row where the target dominates (loss ~ 0) and one
// where it is the smallest logit (loss ~ 200): a naive exp would overflow or lose the answer.
TEST(CrossEntropy, StableForLargeLogits) {
  const int64_t classes = 6;
  const std::vector<float> logits = {100.0f, -100.0f, -100.0f, -100.0f, -100.0f, -100.0f,  // target 0: loss ~ 0
                                     100.0f, 99.0f,   -100.0f, 98.5f,   -50.0f,  -100.0f,  // target 2: loss ~ 200
                                     1e4f,   1e4f,    -1e4f,   3e3f,    1e4f,    0.0f,     // target 4
                                     -90.0f, -91.0f,  -92.0f,  -93.0f,  -94.0f,  -95.0f};  // target 3
  const std::vector<int64_t> targets = {0, 2, 4, 3};
  ExpectMatchesReference(logits, targets, classes, -100, "large logits");
  Tensor t = Tensor::from_vector(logits, {4, classes});
  EXPECT_TRUE(std::isfinite(cross_entropy(t, Tensor::from_vector(targets, {4})).item<float>()));
}

TEST(CrossEntropy, BertSizedVocabulary) {
  const int64_t rows = 12, classes = 30522;
  ExpectMatchesReference(random_values(rows * classes, -20.0f, 20.0f, 3), RandomTargets(rows, classes, 0.5, -100, 4),
                         classes, -100, "vocab 30522");
}

// A NaN logit (of either sign: x86 makes negative NaNs) must not vanish in the max or the exp.
TEST(CrossEntropy, NanLogitGivesNanLossAndGradient) {
  for (float nan : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()}) {
    std::vector<float> values = random_values(2 * 5, -1.0f, 1.0f, 10);
    values[5 + 3] = nan;  // row 1, not its target
    Tensor logits = leaf(values, {2, 5});
    const Tensor loss = cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 1}, {2}));
    EXPECT_TRUE(std::isnan(loss.item<float>()));
    autograd::backward(loss);
    const std::vector<float> grad = logits.grad().to_float_vector();
    for (int c = 0; c < 5; ++c) EXPECT_TRUE(std::isnan(grad[5 + c])) << "row 1 gradient " << c;
    EXPECT_FALSE(std::isnan(grad[0])) << "row 0 is finite";
  }
}

TEST(CrossEntropy, IgnoredRowsAreExcludedFromTheMean) {
  const int64_t classes = 4;
  const std::vector<float> logits = random_values(3 * classes, -2.0f, 2.0f, 5);
  // Row 1 is ignored: the loss is the mean of rows 0 and 2 only.
  const Tensor targets = Tensor::from_vector(std::vector<int64_t>{1, -100, 3}, {3});
  const Tensor with_ignored = cross_entropy(Tensor::from_vector(logits, {3, classes}), targets);
  std::vector<float> kept_rows(logits.begin(), logits.begin() + classes);
  kept_rows.insert(kept_rows.end(), logits.begin() + 2 * classes, logits.end());
  const Tensor without =
      cross_entropy(Tensor::from_vector(kept_rows, {2, classes}), Tensor::from_vector(std::vector<int64_t>{1, 3}, {2}));
  EXPECT_FLOAT_EQ(with_ignored.item<float>(), without.item<float>());
  // A custom ignore index (here class 2 itself) and zero gradients on its rows.
  ExpectMatchesReference(random_values(40 * 9, -3.0f, 3.0f, 6), RandomTargets(40, 9, 0.5, 2, 7), 9, 2, "ignore 2");
}

TEST(CrossEntropy, AllRowsIgnoredGivesZeroLossAndZeroGradient) {
  Tensor logits = random_param({3, 5}, 8);
  const Tensor loss = cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{-100, -100, -100}, {3}));
  EXPECT_EQ(loss.item<float>(), 0.0f);
  autograd::backward(loss);
  for (float g : logits.grad().to_float_vector()) EXPECT_EQ(g, 0.0f);
}

TEST(CrossEntropy, Gradcheck) {
  Tensor logits = random_param({5, 7}, -2.0f, 2.0f, 9);
  const Tensor targets = Tensor::from_vector(std::vector<int64_t>{3, -100, 0, 6, 3}, {5});
  expect_gradcheck([&targets](const std::vector<Tensor>& in) { return cross_entropy(in[0], targets); }, {logits});
}

TEST(CrossEntropy, RejectsBadTargetsNamingThem) {
  const Tensor logits = Tensor::zeros({3, 10});
  for (int64_t bad : {int64_t{10}, int64_t{50}, int64_t{-1}}) {
    try {
      cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, bad, 9}, {3}));
      ADD_FAILURE() << "target " << bad << " was accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("target " + std::to_string(bad) + " of row 1"), std::string::npos) << message;
    }
  }
  EXPECT_THROW(cross_entropy(logits, Tensor::zeros({2}, DType::kI64)), Error);  // wrong length
  EXPECT_THROW(cross_entropy(logits, Tensor::zeros({3})), Error);               // f32 targets
  EXPECT_THROW(cross_entropy(Tensor::zeros({30}), Tensor::zeros({3}, DType::kI64)), Error);
}

}  // namespace
}  // namespace bertforge
