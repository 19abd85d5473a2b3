// GELU and tanh ops: forward and backward against double-precision closed forms (std::erf, std::tanh) and
// against PyTorch (tests/ops/fixtures/softmax_layernorm_gelu.json), backward against the numeric gradient
// checker, special values, and non-contiguous inputs against contiguous ones.
//
// Tolerances: forward and analytic backward within 1e-6 * max(1, |reference|): the kernels' polynomial
// erf/exp/tanh are accurate to ~1e-7 absolute, and a float result of magnitude up to 12 carries 5e-7
// of rounding by itself (torch's own gelu is within 4e-7).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "core/file_io.h"
#include "core/json.h"
#include "ops/activation.h"

namespace bertforge {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> random_values(int64_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

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

Tensor leaf(const std::vector<float>& v, const Shape& shape) {
  Tensor t = Tensor::from_vector(v, shape);
  t.set_requires_grad(true);
  return t;
}

void expect_gradcheck(const autograd::GradcheckFn& fn, const std::vector<Tensor>& inputs) {
  const absl::Status status = autograd::gradcheck(fn, inputs);
  EXPECT_TRUE(status.ok()) << status;
}

// Case `name` of tests/ops/fixtures/softmax_layernorm_gelu.json, PyTorch's outputs and gradients written by
// tests/ops/make_softmax_fixture.py; floats(c, key) reads one of its flat float32 arrays.
Json torch_case(const std::string& name) {
  const std::string path = std::string(BERTFORGE_SOURCE_DIR) + "/tests/ops/fixtures/softmax_layernorm_gelu.json";
  const absl::StatusOr<std::string> text = read_file(path);
  BF_CHECK(text.ok(), text.status().ToString());
  const absl::StatusOr<Json> json = Json::parse(*text);
  BF_CHECK(json.ok(), path, ": ", json.status().ToString());
  const Json* cases = json->get("cases");
  const Json* c = cases != nullptr ? cases->get(name) : nullptr;
  BF_CHECK(c != nullptr, path, " has no case ", name);
  return *c;
}

std::vector<float> floats(const Json& c, const char* key) {
  const Json* array = c.get(key);
  BF_CHECK(array != nullptr && array->is_array(), "fixture case has no array ", key);
  std::vector<float> v;
  for (const Json& x : array->as_array()) v.push_back(static_cast<float>(x.as_number()));
  return v;
}

Shape shape_of(const Json& c, const char* key) {
  Shape shape;
  for (float d : floats(c, key)) shape.push_back(static_cast<int64_t>(d));
  return shape;
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
  const std::vector<float> out = floats(c, "out"), dx = floats(c, "dx");
  expect_close(y.to_float_vector(), std::vector<double>(out.begin(), out.end()), x, "gelu vs torch");
  expect_close(xt.grad().to_float_vector(), std::vector<double>(dx.begin(), dx.end()), x, "gelu' vs torch");
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
    Tensor x = leaf(random_values(shape_numel(shape), -3.0f, 3.0f, 3), shape);
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
    Tensor x = leaf(random_values(shape_numel(shape), -2.5f, 2.5f, 5), shape);
    expect_gradcheck([](const std::vector<Tensor>& in) { return bertforge::tanh(in[0]); }, {x});
  }
}

// A transposed view (non-contiguous) gives bit-identical outputs and gradients to its contiguous copy,
// and the numeric check passes on the view itself.
TEST(Activations, NonContiguousInput) {
  using Fn = Tensor (*)(const Tensor&);
  for (Fn op : {static_cast<Fn>(&gelu), static_cast<Fn>(&bertforge::tanh)}) {
    const Tensor base = Tensor::from_vector(random_values(7 * 5, -3.0f, 3.0f, 17), {7, 5});
    Tensor view = base.transpose(0, 1);  // (5, 7), strides (1, 5)
    ASSERT_FALSE(view.is_contiguous());
    view.set_requires_grad(true);
    Tensor copy = view.contiguous().detach();
    copy.set_requires_grad(true);
    const Tensor dout = Tensor::from_vector(random_values(35, -1.0f, 1.0f, 19), {5, 7});
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
