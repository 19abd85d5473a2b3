// LayerNorm op: forward (output, saved mean and rstd) and backward (dx, dweight, dbias) against
// double-precision closed forms and against PyTorch (tests/ops/fixtures/softmax_layernorm_gelu.json),
// backward against the numeric gradient checker, non-contiguous input, constant rows (variance 0 with
// BERT's eps 1e-12), and thread-count independence of dweight/dbias.
//
// Tolerances: outputs within 3e-6 * (1 + |mean| / std) of the double reference (float rounding of the row
// mean is amplified by 1/std); gradients within 1e-5 relative to the largest reference entry (times the
// same factor); PyTorch's float results within 5e-6.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "ops/layernorm.h"
#include "tests/support/cpu_kernels.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

// Reference LayerNorm of x (rows, cols) in double: outputs and per-row statistics, and the gradients
// for a given dout.
struct Reference {
  std::vector<double> out, mean, rstd, dx, dweight, dbias;
};

Reference layernorm_ref(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                        const std::vector<float>& dout, int64_t rows, int64_t cols, double eps) {
  Reference ref;
  ref.out.resize(rows * cols);
  ref.dx.resize(rows * cols);
  ref.dweight.assign(cols, 0.0);
  ref.dbias.assign(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * cols;
    double mean = 0, var = 0;
    for (int64_t c = 0; c < cols; ++c) mean += xr[c];
    mean /= cols;
    for (int64_t c = 0; c < cols; ++c) var += (xr[c] - mean) * (xr[c] - mean);
    var /= cols;
    const double rstd = 1.0 / std::sqrt(var + eps);
    ref.mean.push_back(mean);
    ref.rstd.push_back(rstd);
    double mean_g = 0, mean_g_xhat = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (xr[c] - mean) * rstd, d = dout[r * cols + c];
      ref.out[r * cols + c] = xhat * w[c] + b[c];
      mean_g += d * w[c] / cols;
      mean_g_xhat += d * w[c] * xhat / cols;
      ref.dweight[c] += d * xhat;
      ref.dbias[c] += d;
    }
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (xr[c] - mean) * rstd;
      ref.dx[r * cols + c] = rstd * (dout[r * cols + c] * w[c] - mean_g - xhat * mean_g_xhat);
    }
  }
  return ref;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

struct Case {
  Shape shape;
  float offset, spread, eps;  // x = offset + uniform(-spread, spread)
};

// Forward through the op, backward with a random dout; compares everything with the double reference.
void check_against_reference(const Case& c, uint32_t seed) {
  SCOPED_TRACE(shape_to_string(c.shape) + " offset " + std::to_string(c.offset) + " eps " + std::to_string(c.eps));
  const int64_t cols = c.shape.back(), n = shape_numel(c.shape), rows = n / cols;
  std::vector<float> x = random_values(n, -c.spread, c.spread, seed);
  for (float& v : x) v += c.offset;
  const std::vector<float> w = random_values(cols, 0.5f, 1.5f, seed + 1),
                           b = random_values(cols, -0.5f, 0.5f, seed + 2);
  const std::vector<float> dout = random_values(n, -1.0f, 1.0f, seed + 3);
  const Reference ref = layernorm_ref(x, w, b, dout, rows, cols, c.eps);

  Tensor xt = leaf(x, c.shape), wt = leaf(w, {cols}), bt = leaf(b, {cols});
  const Tensor y = layer_norm(xt, wt, bt, c.eps);
  ASSERT_EQ(y.shape(), c.shape);
  const double std_dev = c.spread / std::sqrt(3.0);
  expect_near_all(y.to_float_vector(), ref.out, 3e-6 * (1 + c.offset / std_dev), "out");
  autograd::backward(y, Tensor::from_vector(dout, c.shape));
  expect_near_all(xt.grad().to_float_vector(), ref.dx, 1e-5 * max_abs(ref.dx) * (1 + c.offset / std_dev), "dx");
  expect_near_all(wt.grad().to_float_vector(), ref.dweight, 1e-5 * max_abs(ref.dweight) * (1 + c.offset / std_dev),
                  "dweight");
  expect_near_all(bt.grad().to_float_vector(), ref.dbias, 1e-5 * max_abs(ref.dbias), "dbias");
}

TEST(LayerNorm, MatchesReference) {
  const Case cases[] = {
      {{3, 7}, 0.0f, 2.0f, 1e-12f},     {{2, 3, 5, 9}, 0.0f, 2.0f, 1e-12f}, {{2, 3, 5, 9}, 0.0f, 2.0f, 1e-5f},
      {{4, 768}, 0.0f, 3.0f, 1e-12f},   {{4, 768}, 30.0f, 1.0f, 1e-12f},    {{3, 13}, 0.0f, 1e-3f, 1e-5f},
      {{100, 768}, 0.5f, 2.0f, 1e-12f},  // above the kernels' parallel threshold
  };
  uint32_t seed = 100;
  for (const Case& c : cases) check_against_reference(c, seed += 10);
}

// PyTorch's layer_norm and its autograd gradients, including a row offset by 25 (|mean| / std ~ 20).
TEST(LayerNorm, MatchesPyTorchFixture) {
  const Json c = torch_case("layer_norm");
  const Shape shape = shape_of(c, "shape");
  const int64_t cols = shape.back();
  Tensor x = leaf(floats(c, "x"), shape), w = leaf(floats(c, "weight"), {cols}), b = leaf(floats(c, "bias"), {cols});
  const Tensor y = layer_norm(x, w, b, static_cast<float>(c.get("eps")->as_number()));
  autograd::backward(y, Tensor::from_vector(floats(c, "dout"), shape));
  expect_near_all(y.to_float_vector(), doubles(c, "out"), 5e-6, "out vs torch");
  expect_near_all(x.grad().to_float_vector(), doubles(c, "dx"), 5e-6, "dx vs torch");
  expect_near_all(w.grad().to_float_vector(), doubles(c, "dweight"), 5e-6, "dweight vs torch");
  expect_near_all(b.grad().to_float_vector(), doubles(c, "dbias"), 5e-6, "dbias vs torch");
}

// The saved statistics, straight from the kernel: mean and rstd = 1 / sqrt(biased var + eps).
TEST(LayerNorm, KernelSavesMeanAndRstd) {
  const int64_t rows = 5, cols = 37;
  const std::vector<float> x = random_values(rows * cols, -3.0f, 4.0f, 1);
  const std::vector<float> w(cols, 1.0f), b(cols, 0.0f), dout(rows * cols, 0.0f);
  std::vector<float> out(rows * cols), mean(rows), rstd(rows);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows, cols, 1e-5f);
  const Reference ref = layernorm_ref(x, w, b, dout, rows, cols, 1e-5);
  expect_near_all(mean, ref.mean, 1e-6, "mean");
  for (int64_t r = 0; r < rows; ++r) EXPECT_NEAR(rstd[r], ref.rstd[r], 1e-6 * ref.rstd[r]) << "row " << r;
}

// A constant row has variance 0: rstd = 1/sqrt(eps) = 1e6 with BERT's eps, xhat = 0, out = bias, no NaN.
TEST(LayerNorm, ConstantRow) {
  const int64_t cols = 7;
  const std::vector<float> b = random_values(cols, -1.0f, 1.0f, 3);
  Tensor x = leaf(std::vector<float>(2 * cols, 0.75f), {2, cols});
  Tensor w = random_param({cols}, 0.5f, 1.5f, 2), bt = leaf(b, {cols});
  const Tensor y = layer_norm(x, w, bt, 1e-12f);
  const std::vector<float> out = y.to_float_vector();
  for (int64_t i = 0; i < 2 * cols; ++i) EXPECT_EQ(out[i], b[i % cols]) << i;
  autograd::backward(y, random_tensor({2, cols}, -1.0f, 1.0f, 4));
  for (float g : x.grad().to_float_vector()) EXPECT_TRUE(std::isfinite(g));
  for (float g : w.grad().to_float_vector()) EXPECT_EQ(g, 0.0f);  // dweight = sum dout * xhat, xhat = 0
}

TEST(LayerNorm, Gradcheck) {
  autograd::GradcheckOptions options;
  options.eps = 2e-3;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 3, 5, 9}}) {
    const int64_t cols = shape.back();
    Tensor x = random_param(shape, -2.0f, 2.0f, 5);
    Tensor w = random_param({cols}, 0.5f, 1.5f, 6), b = random_param({cols}, -1.0f, 1.0f, 7);
    expect_gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-12f); }, {x, w, b},
                     shape_to_string(shape), options);
  }
}

// A transposed view (non-contiguous) gives bit-identical outputs and gradients to its contiguous copy.
TEST(LayerNorm, NonContiguousInput) {
  const Tensor base = random_tensor({9, 4}, -2.0f, 2.0f, 8);
  Tensor view = base.transpose(0, 1);  // (4, 9): rows of the LayerNorm are strided
  ASSERT_FALSE(view.is_contiguous());
  view.set_requires_grad(true);
  Tensor copy = view.contiguous().detach();
  copy.set_requires_grad(true);
  const Tensor w = random_tensor({9}, 0.5f, 1.5f, 9);
  const Tensor b = random_tensor({9}, -1.0f, 1.0f, 10);
  const Tensor dout = random_tensor({4, 9}, -1.0f, 1.0f, 11);
  const Tensor y_view = layer_norm(view, w, b, 1e-12f), y_copy = layer_norm(copy, w, b, 1e-12f);
  EXPECT_EQ(y_view.to_float_vector(), y_copy.to_float_vector());
  autograd::backward(y_view, dout);
  autograd::backward(y_copy, dout);
  EXPECT_EQ(view.grad().to_float_vector(), copy.grad().to_float_vector());
}

// dweight/dbias are summed over fixed row chunks in a fixed order: bit-identical for any thread count.
TEST(LayerNorm, BackwardIndependentOfThreadCount) {
  const int64_t rows = 1000, cols = 96;  // 96000 elements: above the parallel threshold; 32 row chunks
  const std::vector<float> x = random_values(rows * cols, -2.0f, 2.0f, 12),
                           dout = random_values(rows * cols, -1.0f, 1.0f, 13);
  const std::vector<float> w = random_values(cols, 0.5f, 1.5f, 14), b(cols, 0.0f);
  std::vector<float> out(rows * cols), mean(rows), rstd(rows);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows, cols, 1e-12f);
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> dx(rows * cols), dweight(cols, NAN), dbias(cols, NAN);  // NaN: must be overwritten
    cpu::layernorm_backward(dx.data(), dweight.data(), dbias.data(), dout.data(), x.data(), w.data(), mean.data(),
                            rstd.data(), rows, cols);
    omp_set_num_threads(saved);
    dx.insert(dx.end(), dweight.begin(), dweight.end());
    dx.insert(dx.end(), dbias.begin(), dbias.end());
    return dx;
  };
  const std::vector<float> one = run(1), two = run(2), three = run(3);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
  const Reference ref = layernorm_ref(x, w, b, dout, rows, cols, 1e-12);
  expect_near_all(std::vector<float>(one.end() - 2 * cols, one.end() - cols), ref.dweight, 1e-5 * max_abs(ref.dweight),
                  "dweight");
}

TEST(LayerNorm, RejectsBadShapes) {
  const Tensor x = Tensor::zeros({2, 5}), w = Tensor::ones({5}), b = Tensor::zeros({5});
  EXPECT_THROW(layer_norm(x, Tensor::ones({4}), b, 1e-12f), Error);
  EXPECT_THROW(layer_norm(x, w, Tensor::zeros({2, 5}), 1e-12f), Error);
  EXPECT_THROW(layer_norm(Tensor::zeros({2, 0}), Tensor::ones({0}), Tensor::zeros({0}), 1e-12f), Error);
  EXPECT_THROW(layer_norm(x.to(DType::kI32), w, b, 1e-12f), Error);
  EXPECT_THROW(layer_norm(x, w, b, -1.0f), Error);
}

}  // namespace
}  // namespace bertforge
