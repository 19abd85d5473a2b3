// Softmax and clipped softmax ops: forward and backward against double-precision closed forms, with
// and without additive masks of every accepted shape, and against PyTorch (tests/ops/fixtures/
// softmax_layernorm_gelu.json); masked and fully masked rows; rejected mask shapes; non-contiguous inputs;
// backward against the numeric gradient checker; and the clipped softmax rules (gamma = 0, zeta = 1 is
// softmax bit for bit; no gradient through clipped outputs).
//
// Tolerances: probabilities within 1e-6 absolute of the double reference (they are <= 1; the kernel's exp
// is within 1.3 ulp), gradients within 1e-6 absolute for |dout| <= 1; PyTorch's float results within
// 5e-7 (6e-7 for the clipped softmax, whose outputs are stretched by zeta - gamma = 1.2).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "ops/softmax.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

constexpr float kInf = std::numeric_limits<float>::infinity();

// The mask broadcast to x's shape (mask.expand does the NumPy broadcast), as a flat vector.
std::vector<float> broadcast_mask(const Tensor& mask, const Shape& shape) {
  if (!mask.defined()) return std::vector<float>(shape_numel(shape), 0.0f);
  return mask.expand(shape).to_float_vector();
}

// Double-precision reference of clip((zeta - gamma) softmax(x + mask) + gamma, 0, 1) over rows of `cols`,
// and its gradient for `dout` by docs/design.md's rule; gamma = 0, zeta = 1 gives plain softmax.
struct Reference {
  std::vector<double> probs, out, dx;
};

Reference reference(const std::vector<float>& x, const std::vector<float>& mask, const std::vector<float>& dout,
                    int64_t cols, double gamma = 0.0, double zeta = 1.0) {
  Reference ref;
  const int64_t n = static_cast<int64_t>(x.size());
  ref.probs.resize(n);
  ref.out.resize(n);
  ref.dx.resize(n);
  for (int64_t r = 0; r < n / cols; ++r) {
    const int64_t o = r * cols;
    double max = -INFINITY, sum = 0;
    for (int64_t c = 0; c < cols; ++c) max = std::max(max, static_cast<double>(x[o + c]) + mask[o + c]);
    for (int64_t c = 0; c < cols; ++c) {
      const double e = max == -INFINITY ? 0.0 : std::exp(static_cast<double>(x[o + c]) + mask[o + c] - max);
      ref.probs[o + c] = e;
      sum += e;
    }
    double dot = 0;
    std::vector<double> g(cols);
    for (int64_t c = 0; c < cols; ++c) {
      const double p = sum > 0 ? ref.probs[o + c] / sum : 0.0;
      ref.probs[o + c] = p;
      const double u = (zeta - gamma) * p + gamma;
      ref.out[o + c] = std::min(std::max(u, 0.0), 1.0);
      g[c] = (u >= 0 && u <= 1) ? (zeta - gamma) * dout[o + c] : 0.0;
      dot += g[c] * p;
    }
    for (int64_t c = 0; c < cols; ++c) ref.dx[o + c] = ref.probs[o + c] * (g[c] - dot);
  }
  return ref;
}

// Runs `op` on a fixture case's x (and mask, when it has one) and compares output and gradient with PyTorch's.
void expect_matches_torch(const std::string& name, double tolerance,
                          const std::function<Tensor(const Tensor& x, const Tensor& mask)>& op) {
  const Json c = torch_case(name);
  const Shape shape = shape_of(c, "shape");
  const Tensor mask =
      c.get("mask") != nullptr ? Tensor::from_vector(floats(c, "mask"), shape_of(c, "mask_shape")) : Tensor();
  Tensor x = leaf(floats(c, "x"), shape);
  const Tensor y = op(x, mask);
  autograd::backward(y, Tensor::from_vector(floats(c, "dout"), shape));
  expect_near_all(y.to_float_vector(), doubles(c, "out"), tolerance, name + " out");
  expect_near_all(x.grad().to_float_vector(), doubles(c, "dx"), tolerance, name + " dx");
}

// A mask of `shape` with mostly 0, some -1e4 and -inf (never a whole row of them), and small values.
Tensor make_mask(const Shape& shape, uint32_t seed) {
  std::vector<float> v = random_values(shape_numel(shape), -0.5f, 0.5f, seed);
  const int64_t cols = shape.back();
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t c = static_cast<int64_t>(i) % cols;
    if (c == 0) continue;  // column 0 always kept
    if ((i + seed) % 4 == 0) v[i] = -1e4f;
    if ((i + seed) % 7 == 0) v[i] = -kInf;
  }
  return Tensor::from_vector(v, shape);
}

// Forward and backward of softmax(x + mask) through the op against the reference.
void check_softmax(const Shape& x_shape, const Tensor& mask, uint32_t seed) {
  const std::string what = "x " + shape_to_string(x_shape) + " mask " + (mask.defined() ? mask.shape_str() : "none");
  const int64_t n = shape_numel(x_shape), cols = x_shape.back();
  const std::vector<float> x = random_values(n, -4.0f, 4.0f, seed), dout = random_values(n, -1.0f, 1.0f, seed + 1);
  const std::vector<float> mask_full = broadcast_mask(mask, x_shape);
  const Reference ref = reference(x, mask_full, dout, cols);
  Tensor xt = leaf(x, x_shape);
  const Tensor y = softmax(xt, mask);
  const std::vector<float> probs = y.to_float_vector();
  expect_near_all(probs, ref.probs, 1e-6, what + " probs");
  for (int64_t i = 0; i < n; ++i) {  // masked entries (exp underflows to 0 in double) are exactly 0
    if (ref.probs[i] == 0.0) {
      EXPECT_EQ(probs[i], 0.0f) << what << " masked entry " << i;
    }
  }
  autograd::backward(y, Tensor::from_vector(dout, x_shape));
  expect_near_all(xt.grad().to_float_vector(), ref.dx, 1e-6, what + " dx");
}

TEST(Softmax, MatchesReference) {
  check_softmax({3, 7}, Tensor(), 1);
  check_softmax({2, 3, 5, 9}, Tensor(), 2);
  check_softmax({300, 128}, Tensor(), 3);                              // BERT's T; above the parallel threshold
  check_softmax({2, 3, 5, 9}, Tensor::full({2, 3, 5, 9}, -1e30f), 4);  // huge uniform shift cancels
}

TEST(Softmax, MatchesPyTorchFixture) {
  expect_matches_torch("softmax", 5e-7, [](const Tensor& x, const Tensor&) { return softmax(x); });
  expect_matches_torch("softmax_masked", 5e-7, [](const Tensor& x, const Tensor& mask) { return softmax(x, mask); });
}

// Every accepted mask layout for scores (B, H, Tq, T) = (2, 3, 5, 9).
TEST(Softmax, MaskShapes) {
  const Shape x_shape{2, 3, 5, 9};
  uint32_t seed = 10;
  for (const Shape& mask_shape : {Shape{2, 1, 1, 9}, Shape{2, 3, 1, 9}, Shape{2, 3, 5, 9}, Shape{1, 1, 1, 9}, Shape{9},
                                  Shape{1, 9}, Shape{1, 1, 9}}) {
    check_softmax(x_shape, make_mask(mask_shape, seed), seed);
    seed += 10;
  }
  check_softmax({64, 12, 128}, make_mask({64, 1, 128}, 5), 6);  // rows_per_mask 12, parallel
}

TEST(Softmax, RejectsMasksTheKernelCannotExpress) {
  const Tensor x = Tensor::zeros({2, 3, 5, 9});
  for (const Shape& bad : {Shape{1, 1, 5, 9}, Shape{2, 1, 5, 9}, Shape{5, 9}, Shape{2, 3, 5, 1}, Shape{2, 3, 5, 8},
                           Shape{1, 2, 3, 5, 9}}) {
    EXPECT_THROW(softmax(x, Tensor::zeros(bad)), Error) << shape_to_string(bad);
    EXPECT_THROW(clipped_softmax(x, Tensor::zeros(bad), -0.1f, 1.0f), Error) << shape_to_string(bad);
  }
  EXPECT_THROW(softmax(x, Tensor::zeros({2, 1, 1, 9}, DType::kI32)), Error);
  try {
    softmax(x, Tensor::zeros({1, 1, 5, 9}));
    ADD_FAILURE() << "no error for mask [1, 1, 5, 9]";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expand the mask"), std::string::npos) << e.what();
  }
}

// A row whose every entry is -inf (fully masked) gets probability 0 and gradient 0; other rows are unaffected.
TEST(Softmax, FullyMaskedRowIsZero) {
  const Shape shape{2, 2, 6};
  const std::vector<float> x = random_values(24, -2.0f, 2.0f, 20);
  std::vector<float> m(2 * 6, 0.0f);
  for (int c = 0; c < 6; ++c) m[6 + c] = -kInf;  // batch 1: every key masked
  const Tensor mask = Tensor::from_vector(m, {2, 1, 6});
  for (bool clipped : {false, true}) {
    Tensor xt = leaf(x, shape);
    const Tensor y = clipped ? clipped_softmax(xt, mask, -0.05f, 1.0f) : softmax(xt, mask);
    const std::vector<float> out = y.to_float_vector();
    autograd::backward(y, Tensor::ones(shape));
    const std::vector<float> dx = xt.grad().to_float_vector();
    for (int i = 0; i < 24; ++i) {
      if (i >= 12) {
        EXPECT_EQ(out[i], 0.0f) << i;
        EXPECT_EQ(dx[i], 0.0f) << i;
      } else if (!clipped) {
        EXPECT_GT(out[i], 0.0f) << i;
      }
    }
  }
}

TEST(Softmax, Gradcheck) {
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 3, 5, 9}}) {
    Tensor x = random_param(shape, -2.0f, 2.0f, 30);
    expect_gradcheck([](const std::vector<Tensor>& in) { return softmax(in[0]); }, {x}, shape_to_string(shape));
  }
  Tensor x = random_param({2, 3, 5, 9}, -2.0f, 2.0f, 31);
  const Tensor mask = make_mask({2, 1, 1, 9}, 32);
  expect_gradcheck([&mask](const std::vector<Tensor>& in) { return softmax(in[0], mask); }, {x}, "masked");
}

// A transposed view (non-contiguous) gives bit-identical outputs and gradients to its contiguous copy.
TEST(Softmax, NonContiguousInput) {
  const Tensor base = random_tensor({2, 3, 9, 5}, -3.0f, 3.0f, 40);
  const Tensor mask = make_mask({2, 1, 1, 9}, 41);
  const Tensor dout = random_tensor({2, 3, 5, 9}, -1.0f, 1.0f, 42);
  for (bool clipped : {false, true}) {
    Tensor view = base.transpose(2, 3);  // (2, 3, 5, 9); the softmax dim has stride 5
    ASSERT_FALSE(view.is_contiguous());
    view.set_requires_grad(true);
    Tensor copy = view.contiguous().detach();
    copy.set_requires_grad(true);
    auto op = [&](const Tensor& t) { return clipped ? clipped_softmax(t, mask, -0.1f, 1.1f) : softmax(t, mask); };
    const Tensor y_view = op(view), y_copy = op(copy);
    EXPECT_EQ(y_view.to_float_vector(), y_copy.to_float_vector());
    autograd::backward(y_view, dout);
    autograd::backward(y_copy, dout);
    EXPECT_EQ(view.grad().to_float_vector(), copy.grad().to_float_vector());
  }
}

// ---- Clipped softmax ------------------------------------------------------------------------------------

TEST(ClippedSoftmax, GammaFromAlpha) {
  EXPECT_FLOAT_EQ(clipped_softmax_gamma_from_alpha(3.2f, 128), -0.025f);
  EXPECT_FLOAT_EQ(clipped_softmax_gamma_from_alpha(1.0f, 4), -0.25f);
  EXPECT_THROW(clipped_softmax_gamma_from_alpha(1.0f, 0), Error);
}

TEST(ClippedSoftmax, RejectsZetaNotAboveGamma) {
  const Tensor x = Tensor::zeros({2, 4});
  EXPECT_THROW(clipped_softmax(x, Tensor(), 0.5f, 0.5f), Error);
  EXPECT_THROW(clipped_softmax(x, Tensor(), 0.0f, -1.0f), Error);
}

// gamma = 0, zeta = 1: nothing is ever clipped (0 <= p <= 1), so forward and backward are softmax exactly.
TEST(ClippedSoftmax, GammaZeroZetaOneIsSoftmax) {
  const Shape shape{2, 3, 5, 9};
  const std::vector<float> x = random_values(270, -6.0f, 6.0f, 50);
  const Tensor dout = random_tensor(shape, -1.0f, 1.0f, 51);
  for (const Tensor& mask : {Tensor(), make_mask({2, 1, 1, 9}, 52)}) {
    Tensor a = leaf(x, shape), b = leaf(x, shape);
    const Tensor ya = softmax(a, mask), yb = clipped_softmax(b, mask, 0.0f, 1.0f);
    EXPECT_EQ(ya.to_float_vector(), yb.to_float_vector());
    autograd::backward(ya, dout);
    autograd::backward(yb, dout);
    EXPECT_EQ(a.grad().to_float_vector(), b.grad().to_float_vector());
  }
  // A one-hot row (p = 1 exactly) is not clipped either.
  Tensor one_hot = leaf({0.0f, -kInf, -kInf}, {1, 3});
  EXPECT_EQ(clipped_softmax(one_hot, Tensor(), 0.0f, 1.0f).to_float_vector(), (std::vector<float>{1.0f, 0.0f, 0.0f}));
}

// Rows built so that some outputs clip at 0 (small p), one at 1 (p close to 1) and the rest are inside.
struct ClipCase {
  Shape shape{3, 7};
  float gamma = -0.1f, zeta = 1.1f;
  std::vector<float> x = {
      4.0f, -1.0f, -3.0f, 0.5f, -2.5f, 0.0f,  -4.0f,  // one large logit: p > 11/12 clips to 1 at the top
      0.3f, 0.1f,  -0.2f, 0.4f, -3.0f, 0.0f,  -2.0f,  // near uniform: the two small ones clip at 0
      1.0f, 2.0f,  -1.5f, 0.7f, -0.1f, -4.0f, 1.6f,
  };
};

TEST(ClippedSoftmax, MatchesReference) {
  const ClipCase c;
  const std::vector<float> dout = random_values(21, -1.0f, 1.0f, 60);
  const std::vector<float> no_mask(21, 0.0f);
  const Reference ref = reference(c.x, no_mask, dout, 7, c.gamma, c.zeta);
  int at_zero = 0, at_one = 0;
  for (double v : ref.out) {
    at_zero += v == 0.0;
    at_one += v == 1.0;
  }
  ASSERT_GE(at_zero, 3);  // the case really exercises both clips
  ASSERT_GE(at_one, 1);
  Tensor x = leaf(c.x, c.shape);
  const Tensor y = clipped_softmax(x, Tensor(), c.gamma, c.zeta);
  expect_near_all(y.to_float_vector(), ref.out, 1.2e-6, "out");
  autograd::backward(y, Tensor::from_vector(dout, c.shape));
  expect_near_all(x.grad().to_float_vector(), ref.dx, 1.2e-6, "dx");

  // Masked entries have p = 0 and output clip(gamma, 0, 1) = 0.
  const Tensor mask = make_mask({3, 7}, 61);
  const std::vector<float> masked =
      clipped_softmax(Tensor::from_vector(c.x, c.shape), mask, c.gamma, c.zeta).to_float_vector();
  const std::vector<float> m = mask.to_float_vector();
  for (int i = 0; i < 21; ++i) {
    if (m[i] <= -1e4f) {
      EXPECT_EQ(masked[i], 0.0f) << i;
    }
  }
}

TEST(ClippedSoftmax, MatchesPyTorchFixture) {
  const Json c = torch_case("clipped_softmax_masked");
  const float gamma = static_cast<float>(c.get("gamma")->as_number()),
              zeta = static_cast<float>(c.get("zeta")->as_number());
  expect_matches_torch("clipped_softmax_masked", 6e-7, [gamma, zeta](const Tensor& x, const Tensor& mask) {
    return clipped_softmax(x, mask, gamma, zeta);
  });
}

// Changing dout where the output is clipped leaves dlogits bit-identical; changing it where the output is
// inside (0, 1) changes dlogits. Without the clip rule, the first half of this test fails.
TEST(ClippedSoftmax, NoGradientThroughClippedOutputs) {
  const ClipCase c;
  const std::vector<float> out =
      clipped_softmax(Tensor::from_vector(c.x, c.shape), Tensor(), c.gamma, c.zeta).to_float_vector();
  auto dlogits = [&](const std::vector<float>& dout) {
    Tensor x = leaf(c.x, c.shape);
    autograd::backward(clipped_softmax(x, Tensor(), c.gamma, c.zeta), Tensor::from_vector(dout, c.shape));
    return x.grad().to_float_vector();
  };
  const std::vector<float> dout = random_values(21, -1.0f, 1.0f, 70);
  const std::vector<float> base = dlogits(dout);
  std::vector<float> changed_clipped = dout, changed_inside = dout;
  int clipped = 0;
  for (int i = 0; i < 21; ++i) {
    if (out[i] == 0.0f || out[i] == 1.0f) {
      changed_clipped[i] += 5.0f;
      ++clipped;
    }
  }
  ASSERT_GE(clipped, 4);
  EXPECT_EQ(dlogits(changed_clipped), base);
  for (int i = 0; i < 21; ++i) {
    if (out[i] > 0.0f && out[i] < 1.0f) {
      changed_inside[i] += 5.0f;
      break;
    }
  }
  EXPECT_NE(dlogits(changed_inside), base);
}

// Finite differences are valid away from the kinks: a +-1e-3 step in a logit moves p by at most 2.5e-4 and the
// pre-clip value u = (zeta - gamma) p + gamma by at most 3e-4, so every u is required (checked) to be at
// least kMargin = 1e-3 from 0 and 1.
TEST(ClippedSoftmax, Gradcheck) {
  constexpr double kMargin = 1e-3;
  const ClipCase c;
  const std::vector<float> no_mask(21, 0.0f), zeros(21, 0.0f);
  const Reference ref = reference(c.x, no_mask, zeros, 7, c.gamma, c.zeta);
  for (double p : ref.probs) {
    const double u = (c.zeta - c.gamma) * p + c.gamma;
    ASSERT_GT(std::min(std::fabs(u), std::fabs(u - 1.0)), kMargin) << "pre-clip value " << u << " too close to a kink";
  }
  Tensor x = leaf(c.x, c.shape);
  expect_gradcheck([&c](const std::vector<Tensor>& in) { return clipped_softmax(in[0], Tensor(), c.gamma, c.zeta); },
                   {x}, "clipped (3, 7)");

  // (2, 3, 5, 9) with a (2, 1, 1, 9) mask: random logits, redrawn until no pre-clip value is near a kink.
  const Shape shape{2, 3, 5, 9};
  const Tensor mask = make_mask({2, 1, 1, 9}, 80);
  const std::vector<float> mask_full = broadcast_mask(mask, shape);
  std::vector<float> logits;
  uint32_t seed = 81;
  for (;; ++seed) {
    logits = random_values(270, -3.0f, 3.0f, seed);
    const Reference r = reference(logits, mask_full, std::vector<float>(270, 0.0f), 9, c.gamma, c.zeta);
    bool ok = true;
    for (double p : r.probs) {
      const double u = (c.zeta - c.gamma) * p + c.gamma;
      ok = ok && std::min(std::fabs(u), std::fabs(u - 1.0)) > kMargin;
    }
    if (ok) break;
    ASSERT_LT(seed, 1000u);
  }
  Tensor x4 = leaf(logits, shape);
  expect_gradcheck([&](const std::vector<Tensor>& in) { return clipped_softmax(in[0], mask, c.gamma, c.zeta); }, {x4},
                   "clipped (2, 3, 5, 9) masked, logits seed " + std::to_string(seed));
}

}  // namespace
}  // namespace bertforge
