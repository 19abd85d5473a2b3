// The backward engine: accumulation, graph freeing, no-grad, and the checker itself.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"

namespace bertforge {
namespace {

Tensor param(const std::vector<float>& v, const Shape& shape) {
  Tensor t = Tensor::from_vector(v, shape);
  t.set_requires_grad(true);
  return t;
}

TEST(Autograd, ScalarBackwardOfAProduct) {
  Tensor x = param({1, 2, 3}, {3});
  Tensor y = param({4, 5, 6}, {3});
  Tensor loss = sum(mul(x, y));  // dL/dx = y, dL/dy = x
  autograd::backward(loss);
  EXPECT_EQ(x.grad().to_float_vector(), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(y.grad().to_float_vector(), (std::vector<float>{1, 2, 3}));
}

TEST(Autograd, GradientsAccumulateAcrossUses) {
  Tensor x = param({1, -2}, {2});
  // L = sum(x*x + 3x): x reaches the loss through three paths; dL/dx = 2x + 3.
  Tensor loss = sum(add(mul(x, x), scale(x, 3.0f)));
  autograd::backward(loss);
  EXPECT_EQ(x.grad().to_float_vector(), (std::vector<float>{5, -1}));
}

TEST(Autograd, LeafGradientsAccumulateAcrossBackwardCalls) {
  Tensor x = param({2}, {1});
  autograd::backward(sum(scale(x, 3.0f)));
  autograd::backward(sum(scale(x, 4.0f)));
  EXPECT_EQ(x.grad().to_float_vector(), (std::vector<float>{7}));
}

TEST(Autograd, SharedGradientIsNotAliasedBetweenLeaves) {
  // add's backward hands the same tensor to both inputs; each leaf must own its copy.
  Tensor a = param({1, 1}, {2});
  Tensor b = param({1, 1}, {2});
  autograd::backward(sum(add(a, b)));
  EXPECT_FALSE(a.grad().shares_storage_with(b.grad()));
  a.grad().fill_(0.0f);
  EXPECT_EQ(b.grad().to_float_vector(), (std::vector<float>{1, 1}));
}

TEST(Autograd, GraphIsFreedAfterBackwardUnlessRetained) {
  Tensor x = param({1, 2}, {2});
  Tensor loss = sum(mul(x, x));
  autograd::backward(loss, Tensor(), /*retain_graph=*/true);
  autograd::backward(loss);
  EXPECT_EQ(x.grad().to_float_vector(), (std::vector<float>{4, 8}));
  EXPECT_THROW(autograd::backward(loss), Error);
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = param({1, 2}, {2});
  {
    autograd::NoGradGuard guard;
    Tensor y = mul(x, x);
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_TRUE(mul(x, x).requires_grad());
  EXPECT_THROW(autograd::backward(sum(Tensor::ones({2}))), Error);  // nothing requires grad
}

TEST(Autograd, BackwardNeedsGradOutputForNonScalars) {
  Tensor x = param({1, 2}, {2});
  EXPECT_THROW(autograd::backward(scale(x, 2.0f)), Error);
  autograd::backward(scale(x, 2.0f), Tensor::from_vector<float>({1, 10}, {2}));
  EXPECT_EQ(x.grad().to_float_vector(), (std::vector<float>{2, 20}));
}

TEST(Autograd, InputsWithoutGradGetNone) {
  Tensor x = param({1, 2}, {2});
  Tensor c = Tensor::from_vector<float>({3, 4}, {2});
  autograd::backward(sum(mul(x, c)));
  EXPECT_FALSE(c.grad().defined());
  EXPECT_EQ(x.grad().to_float_vector(), (std::vector<float>{3, 4}));
}

TEST(Autograd, DeepChainRunsInTopologicalOrder) {
  // y = 2^20 x through 20 scale nodes, with a skip connection every step.
  Tensor x = param({1}, {1});
  Tensor h = x;
  for (int i = 0; i < 20; ++i) h = add(h, h);
  autograd::backward(sum(h));
  EXPECT_EQ(x.grad().item<float>(), static_cast<float>(1 << 20));
}

TEST(Autograd, LeafReadyIsCalledOnceWhenTheGradientIsFinal) {
  // L = sum((x w1) w2) + sum(x x): w2 is nearest the loss; x arrives through three edges (x w1, and x twice).
  Tensor x = param({1, -2}, {2});
  Tensor w1 = param({3, 4}, {2});
  Tensor w2 = param({5, 6}, {2});
  x.set_grad(Tensor::from_vector<float>({100, 100}, {2}));  // an earlier backward's gradient accumulates too
  Tensor loss = add(sum(mul(mul(x, w1), w2)), sum(mul(x, x)));
  std::vector<std::pair<const AutogradMeta*, std::vector<float>>> calls;
  autograd::backward(loss, Tensor(), false, [&](const AutogradMeta& leaf) {
    calls.emplace_back(&leaf, leaf.grad.to_float_vector());
  });
  ASSERT_EQ(calls.size(), 3u);
  auto call_of = [&](const Tensor& t) {
    for (size_t i = 0; i < calls.size(); ++i) {
      if (calls[i].first == t.autograd_meta()) return i;
    }
    ADD_FAILURE() << "no call for a leaf";
    return calls.size();
  };
  const size_t cx = call_of(x), cw1 = call_of(w1), cw2 = call_of(w2);
  ASSERT_LT(cx, calls.size());
  ASSERT_LT(cw1, calls.size());
  ASSERT_LT(cw2, calls.size());
  EXPECT_LT(cw2, cw1);  // w2's edge delivers before backward reaches x w1
  // At each call the gradient is already the final one: dL/dx = w1 w2 + 2x (+ 100), dL/dw1 = x w2, dL/dw2 = x w1.
  EXPECT_EQ(calls[cx].second, (std::vector<float>{100 + 15 + 2, 100 + 24 - 4}));
  EXPECT_EQ(calls[cw1].second, (std::vector<float>{5, -12}));
  EXPECT_EQ(calls[cw2].second, (std::vector<float>{3, -8}));
  EXPECT_EQ(calls[cx].second, x.grad().to_float_vector());
}

TEST(Autograd, LeafReadyIsCalledForALeafRoot) {
  Tensor x = param({2}, {1});
  int calls = 0;
  autograd::backward(x, Tensor::from_vector<float>({1}, {1}), false, [&](const AutogradMeta& leaf) {
    EXPECT_EQ(&leaf, x.autograd_meta());
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

TEST(Gradcheck, AcceptsACorrectGradientAndRejectsAWrongOne) {
  Tensor x = param({0.3f, -1.2f, 2.0f}, {3});
  auto square = [](const std::vector<Tensor>& in) { return mul(in[0], in[0]); };
  EXPECT_TRUE(autograd::gradcheck(square, {x}).ok());
  // An op whose backward is off by a factor 2 must be caught.
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor out = in[0].detach().clone();
    return autograd::record("wrong_identity", out, {in[0]}, [](const Tensor& dout) {
      return std::vector<Tensor>{scale(dout, 2.0f)};
    });
  };
  absl::Status status = autograd::gradcheck(wrong, {x});
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("analytic"), absl::string_view::npos) << status;
}

TEST(Gradcheck, WorksOnNonContiguousInputs) {
  Tensor base = param({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor x = base.detach().transpose(0, 1);  // (3, 2) view
  x.set_requires_grad(true);
  Tensor w = Tensor::from_vector<float>({0.5f, -1, 2, 0.25f}, {2, 2});
  auto fn = [&](const std::vector<Tensor>& in) { return matmul(in[0], w); };
  EXPECT_TRUE(autograd::gradcheck(fn, {x}).ok());
}

}  // namespace
}  // namespace bertforge
