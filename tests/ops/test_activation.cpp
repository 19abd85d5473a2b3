// GELU, tanh and sigmoid ops: forward and backward against double-precision closed forms (std::erf,
// std::tanh, std::exp), GELU also against PyTorch (tests/ops/fixtures/softmax_layernorm_gelu.json), backward
// against the numeric gradient checker, special values, and non-contiguous inputs against contiguous ones.
//
// Tolerances: forward and analytic backward within 1e-6 * max(1, |reference|): the kernels' polynomial
// erf/exp/tanh are accurate to ~1e-7 absolute, and a float result of magnitude up to 12 carries 5e-7
// of rounding by itself (torch's own gelu is within 4e-7).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/engine.h"
#include "ops/activation.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Every value of [-12, 12] on a 1/1024 grid, then random values: more than the kernels' parallel threshold.
std::vector<float> test_inputs() {
  std::vector<float> v;
  for (int i = -12 * 1024; i <= 12 * 1024; ++i) v.push_back(static_cast<float>(i) / 1024.0f);
  const std::vector<float> r = random_values(40000, -6.0f, 6.0f, 7);
  v.insert(v.end(), r.begin(), r.end());
  return v;
}

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double gelu_grad_ref(double x) {
  return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
}

// got[i] within 1e-6 * max(1, |want[i]|) of want[i]; reports the first few misses with their input.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, const std::vector<float>& x,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size());
  int misses = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tolerance = 1e-6 * std::max(1.0, std::fabs(want[i]));
    if (!(std::fabs(got[i] - want[i]) <= tolerance) && ++misses <= 5) {
      ADD_FAILURE() << what << " at x = " << x[i] << ": got " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(misses, 0) << what;
}

TEST(Gelu, ForwardMatchesErfReference) {
  const std::vector<float> x = test_inputs();
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = gelu_ref(x[i]);
  expect_close(gelu(Tensor::from_vector(x, {n})).to_float_vector(), want, x, "gelu");
}

TEST(Gelu, BackwardMatchesDerivative) {
  const std::vector<float> x = test_inputs();
  const int64_t n = static_cast<int64_t>(x.size());
  const std::vector<float> dout = random_values(n, -2.0f, 2.0f, 11);
  Tensor xt = leaf(x, {n});
  autograd::backward(gelu(xt), Tensor::from_vector(dout, {n}));
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = dout[i] * gelu_grad_ref(x[i]);
  expect_close(xt.grad().to_float_vector(), want, x, "gelu'");
}

// PyTorch's gelu and its autograd gradient (torch's own erf is within 3e-7 of the truth, hence 1e-6).
TEST(Gelu, MatchesPyTorchFixture) {
  const Json c = torch_case("gelu");
  const Shape shape = shape_of(c, "shape");
  const std::vector<float> x = floats(c, "x");
  Tensor xt = leaf(x, shape);
  const Tensor y = gelu(xt);
  autograd::backward(y, Tensor::from_vector(floats(c, "dout"), shape));
  expect_close(y.to_float_vector(), doubles(c, "out"), x, "gelu vs torch");
  expect_close(xt.grad().to_float_vector(), doubles(c, "dx"), x, "gelu' vs torch");
}

TEST(Gelu, SpecialValues) {
  const std::vector<float> y =
      gelu(Tensor::from_vector<float>({0.0f, kInf, -30.0f, NAN, 30.0f}, {5})).to_float_vector();
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], kInf);
  EXPECT_EQ(y[2], 0.0f);  // -30 * Phi(-30): Phi underflows
  EXPECT_TRUE(std::isnan(y[3]));
  EXPECT_EQ(y[4], 30.0f);
}

TEST(Gelu, Gradcheck) {
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 3, 5, 9}}) {
    Tensor x = random_param(shape, -3.0f, 3.0f, 3);
    expect_gradcheck([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x});
  }
}

TEST(Tanh, ForwardMatchesReference) {
  const std::vector<float> x = test_inputs();
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = std::tanh(static_cast<double>(x[i]));
  expect_close(bertforge::tanh(Tensor::from_vector(x, {n})).to_float_vector(), want, x, "tanh");
}

TEST(Tanh, BackwardUsesOneMinusSquare) {
  const std::vector<float> x = test_inputs();
  const int64_t n = static_cast<int64_t>(x.size());
  const std::vector<float> dout = random_values(n, -2.0f, 2.0f, 13);
  Tensor xt = leaf(x, {n});
  autograd::backward(bertforge::tanh(xt), Tensor::from_vector(dout, {n}));
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; ++i) {
    const double t = std::tanh(static_cast<double>(x[i]));
    want[i] = dout[i] * (1.0 - t * t);
  }
  expect_close(xt.grad().to_float_vector(), want, x, "tanh'");
}

TEST(Tanh, SpecialValues) {
  const std::vector<float> y =
      bertforge::tanh(Tensor::from_vector<float>({0.0f, -0.0f, 1e-30f, kInf, -kInf, 50.0f, NAN}, {7}))
          .to_float_vector();
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_TRUE(std::signbit(y[1]));
  EXPECT_EQ(y[2], 1e-30f);
  EXPECT_EQ(y[3], 1.0f);
  EXPECT_EQ(y[4], -1.0f);
  EXPECT_EQ(y[5], 1.0f);
  EXPECT_TRUE(std::isnan(y[6]));
}

TEST(Tanh, Gradcheck) {
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 3, 5, 9}}) {
    Tensor x = random_param(shape, -2.5f, 2.5f, 5);
    expect_gradcheck([](const std::vector<Tensor>& in) { return bertforge::tanh(in[0]); }, {x});
  }
}

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST(Sigmoid, ForwardMatchesReference) {
  const std::vector<float> x = test_inputs();
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = sigmoid_ref(x[i]);
  expect_close(sigmoid(Tensor::from_vector(x, {n})).to_float_vector(), want, x, "sigmoid");
}

// The negative tail keeps its relative precision (e / (1 + e), no 1 - r cancellation): within 4 ulp.
TEST(Sigmoid, NegativeTailIsRelativelyAccurate) {
  std::vector<float> x;
  for (int i = 0; i <= 860; ++i) x.push_back(-0.1f * static_cast<float>(i));  // down to -86
  const std::vector<float> y = sigmoid(Tensor::from_vector(x, {static_cast<int64_t>(x.size())})).to_float_vector();
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = sigmoid_ref(x[i]);
    EXPECT_LE(std::fabs(y[i] - want), 4 * 6e-8 * want) << "sigmoid(" << x[i] << ")";
  }
}

TEST(Sigmoid, BackwardUsesOutput) {
  const std::vector<float> x = test_inputs();
  const int64_t n = static_cast<int64_t>(x.size());
  const std::vector<float> dout = random_values(n, -2.0f, 2.0f, 23);
  Tensor xt = leaf(x, {n});
  autograd::backward(sigmoid(xt), Tensor::from_vector(dout, {n}));
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; ++i) {
    const double s = sigmoid_ref(x[i]);
    want[i] = dout[i] * s * (1.0 - s);
  }
  expect_close(xt.grad().to_float_vector(), want, x, "sigmoid'");
}

TEST(Sigmoid, SpecialValues) {
  const std::vector<float> y =
      sigmoid(Tensor::from_vector<float>({0.0f, kInf, -kInf, 100.0f, -100.0f, NAN}, {6})).to_float_vector();
  EXPECT_EQ(y[0], 0.5f);
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 1.0f);
  EXPECT_EQ(y[4], 0.0f);  // e^-100 is below float's range
  EXPECT_TRUE(std::isnan(y[5]));
}

TEST(Sigmoid, Gradcheck) {
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 3, 5, 9}}) {
    Tensor x = random_param(shape, -4.0f, 4.0f, 29);
    expect_gradcheck([](const std::vector<Tensor>& in) { return sigmoid(in[0]); }, {x});
  }
}

// A transposed view (non-contiguous) gives bit-identical outputs and gradients to its contiguous copy,
// and the numeric check passes on the view itself.
TEST(Activations, NonContiguousInput) {
  using Fn = Tensor (*)(const Tensor&);
  for (Fn op : {static_cast<Fn>(&gelu), static_cast<Fn>(&bertforge::tanh), static_cast<Fn>(&sigmoid)}) {
    const Tensor base = random_tensor({7, 5}, -3.0f, 3.0f, 17);
    Tensor view = base.transpose(0, 1);  // (5, 7), strides (1, 5)
    ASSERT_FALSE(view.is_contiguous());
    view.set_requires_grad(true);
    Tensor copy = view.contiguous().detach();
    copy.set_requires_grad(true);
    const Tensor dout = random_tensor({5, 7}, -1.0f, 1.0f, 19);
    const Tensor y_view = op(view), y_copy = op(copy);
    EXPECT_EQ(y_view.to_float_vector(), y_copy.to_float_vector());
    autograd::backward(y_view, dout);
    autograd::backward(y_copy, dout);
    EXPECT_EQ(view.grad().shape(), (Shape{5, 7}));
    EXPECT_EQ(view.grad().to_float_vector(), copy.grad().to_float_vector());
    expect_gradcheck([op](const std::vector<Tensor>& in) { return op(in[0]); }, {view});
  }
}

}  // namespace
}  // namespace bertforge
