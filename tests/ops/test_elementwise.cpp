// Element-wise, reduction, shape and matmul ops: forward against plain loops,
// backward against the numeric gradient checker.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/kernels.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

TEST(Elementwise, BroadcastForward) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector<float>({10, 20, 30}, {3});
  EXPECT_EQ(add(a, b).to_float_vector(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(sub(a, b).to_float_vector(), (std::vector<float>{-9, -18, -27, -6, -15, -24}));
  Tensor col = Tensor::from_vector<float>({2, 3}, {2, 1});
  EXPECT_EQ(mul(a, col).to_float_vector(), (std::vector<float>{2, 4, 6, 12, 15, 18}));
  EXPECT_EQ(broadcast_shapes({4, 1, 3}, {5, 1}), (Shape{4, 5, 3}));
  EXPECT_THROW(add(a, Tensor::ones({2})), Error);
  EXPECT_EQ(scale(a, -0.5f).at({1, 2}), -3.0f);
  EXPECT_EQ(add_bias(a, b).to_float_vector(), add(a, b).to_float_vector());
  EXPECT_EQ(scale_channels(a, b).to_float_vector(), mul(a, b).to_float_vector());
  EXPECT_THROW(scale_channels(a, Tensor::ones({2})), Error);
}

TEST(Elementwise, Gradients) {
  Tensor a = random_param({2, 3, 4}, 1), b = random_param({3, 1}, 2), c = random_param({2, 3, 4}, 3);
  expect_gradcheck([](auto& in) { return add(in[0], in[1]); }, {a, b});
  expect_gradcheck([](auto& in) { return sub(in[0], in[1]); }, {a, b});
  expect_gradcheck([](auto& in) { return mul(in[0], in[1]); }, {a, b});
  expect_gradcheck([](auto& in) { return mul(in[0], in[1]); }, {a, c});
  expect_gradcheck([](auto& in) { return scale(in[0], 1.7f); }, {a});
  Tensor bias = random_param({4}, 4);
  expect_gradcheck([](auto& in) { return add_bias(in[0], in[1]); }, {a, bias});
  expect_gradcheck([](auto& in) { return scale_channels(in[0], in[1]); }, {a, bias});
}

TEST(Reduce, SumAndMean) {
  Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(sum(t).item<float>(), 21.0f);
  EXPECT_EQ(mean(t).item<float>(), 3.5f);
  EXPECT_EQ(sum(t, {0}).to_float_vector(), (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(sum(t, {1}).to_float_vector(), (std::vector<float>{6, 15}));
  EXPECT_EQ(sum(t, {-1}, /*keepdim=*/true).shape(), (Shape{2, 1}));
  EXPECT_EQ(mean(t, {0}).to_float_vector(), (std::vector<float>{2.5f, 3.5f, 4.5f}));
  EXPECT_EQ(sum(t.transpose(0, 1), {1}).to_float_vector(), (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(sum_to(Tensor::ones({4, 2, 3}), {2, 1}).to_float_vector(), (std::vector<float>{12, 12}));
  Tensor x = random_param({3, 4, 5}, 5);
  expect_gradcheck([](auto& in) { return sum(in[0], {0, 2}); }, {x});
  expect_gradcheck([](auto& in) { return mean(in[0], {1}, true); }, {x});
  expect_gradcheck([](auto& in) { return mean(in[0]); }, {x});
}

// The sum of squares of a list of tensors (several chunks, one element, none, a transposed view) against a double
// reference, 1e-6 relative.
TEST(Reduce, SumOfSquaresOfAList) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<Tensor> tensors;
  double want = 0.0;
  for (int64_t n : {3 * kMultiTensorChunk + 5, int64_t{1}, int64_t{0}, int64_t{777}}) {
    std::vector<float> values(n);
    for (float& x : values) {
      x = u(rng);
      want += static_cast<double>(x) * x;
    }
    tensors.push_back(Tensor::from_vector(values, {n}));
  }
  tensors.push_back(Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1));
  want += 91.0;
  const Tensor got = sum_of_squares(tensors);
  EXPECT_EQ(got.dim(), 0);
  EXPECT_NEAR(got.item<float>(), want, 1e-6 * want);
  EXPECT_EQ(sum_of_squares({}).item<float>(), 0.0f);
  EXPECT_EQ(sum_of_squares({Tensor::zeros({0})}).item<float>(), 0.0f);
  EXPECT_THROW(sum_of_squares({Tensor::zeros({2}, DType::kI64)}), Error);
}

TEST(Shape, ViewsAreDifferentiable) {
  Tensor x = random_param({2, 3, 4}, 6);
  Tensor w = random_param({2, 3, 4}, 7).detach();  // breaks symmetry of the projections
  expect_gradcheck([&](auto& in) { return mul(reshape(in[0], {6, 4}), reshape(w, {6, 4})); }, {x});
  expect_gradcheck([&](auto& in) { return mul(permute(in[0], {2, 0, 1}), permute(w, {2, 0, 1})); }, {x});
  expect_gradcheck([](auto& in) { return contiguous(transpose(in[0], 0, 2)); }, {x});
  expect_gradcheck([](auto& in) { return slice(in[0], 2, 1, 3); }, {x});
  EXPECT_EQ(slice(x, 1, -2, 3).shape(), (Shape{2, 2, 4}));
}

// Plain triple loop in double for op(a) @ op(b), 2-D.
std::vector<double> reference_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1), N = tb ? b.size(0) : b.size(1);
  std::vector<double> c(M * N, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k)
        c[i * N + j] += static_cast<double>(ta ? a.at({k, i}) : a.at({i, k})) * (tb ? b.at({j, k}) : b.at({k, j}));
  return c;
}

TEST(Matmul, AllTransposesAgainstReference) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      Tensor a = random_param(ta ? Shape{7, 5} : Shape{5, 7}, 8);
      Tensor b = random_param(tb ? Shape{3, 7} : Shape{7, 3}, 9);
      Tensor c = matmul(a, b, ta, tb);
      ASSERT_EQ(c.shape(), (Shape{5, 3}));
      std::vector<double> ref = reference_matmul(a, b, ta, tb);
      std::vector<float> got = c.to_float_vector();
      for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-5) << ta << tb << " " << i;
      expect_gradcheck([ta, tb](auto& in) { return matmul(in[0], in[1], ta, tb); }, {a, b});
    }
  }
  EXPECT_THROW(matmul(Tensor::ones({2, 3}), Tensor::ones({4, 2})), Error);
}

TEST(Matmul, BatchedAndSharedWeight) {
  Tensor a = random_param({2, 3, 4, 5}, 10), b = random_param({2, 3, 6, 5}, 11);
  Tensor c = matmul(a, b, false, true);  // (2, 3, 4, 6): like Q K^T
  ASSERT_EQ(c.shape(), (Shape{2, 3, 4, 6}));
  Tensor a01 = a.slice(0, 0, 1).slice(1, 1, 2).reshape({4, 5}), b01 = b.slice(0, 0, 1).slice(1, 1, 2).reshape({6, 5});
  std::vector<double> ref = reference_matmul(a01, b01, false, true);
  std::vector<float> got = c.slice(0, 0, 1).slice(1, 1, 2).to_float_vector();
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-5);
  expect_gradcheck([](auto& in) { return matmul(in[0], in[1], false, true); }, {a, b});
  // A 2-D weight shared by every batch element, as in a Linear layer.
  Tensor x = random_param({2, 3, 5}, 12), w = random_param({4, 5}, 13), bias = random_param({4}, 14);
  expect_gradcheck([](auto& in) { return linear(in[0], in[1], in[2]); }, {x, w, bias});
  Tensor y = linear(x, w, bias);
  EXPECT_NEAR(y.at({1, 2, 3}),
              bias.at({3}) + x.at({1, 2, 0}) * w.at({3, 0}) + x.at({1, 2, 1}) * w.at({3, 1}) +
                  x.at({1, 2, 2}) * w.at({3, 2}) + x.at({1, 2, 3}) * w.at({3, 3}) + x.at({1, 2, 4}) * w.at({3, 4}),
              1e-5);
  expect_gradcheck([](auto& in) { return matmul(in[0], in[1], false, false); },
                   {random_param({2, 3, 5}, 15), random_param({5, 4}, 16)});
}

}  // namespace
}  // namespace bertforge
