// Autocasting (ops/autocast.h): under an AutocastGuard, matmul and linear must compute exactly the FP32 products
// of operands rounded to bf16 / f16, with the output gradient rounded the same way in backward, return FP32
// gradients for FP32 inputs, and keep 16-bit copies (and only those) for backward.
#include "ops/autocast.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "core/host_allocator.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using test_support::random_param;
using test_support::random_tensor;

// t rounded to `dtype` and back: the values a 16-bit product sees.
Tensor rounded(const Tensor& t, DType dtype) { return t.detach().to(dtype).to(DType::kF32); }

void expect_identical(const Tensor& got, const Tensor& want, const char* what) {
  ASSERT_EQ(got.dtype(), DType::kF32) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  EXPECT_EQ(got.to_float_vector(), want.to_float_vector()) << what;
}

class Autocast : public ::testing::TestWithParam<DType> {};

// linear(x, W, b) with loss = sum(y * r), so dL/dy = r: y = round(x) round(W)^T + b, dx = round(r) round(W),
// dW = round(r)^T round(x) summed over the batch, db = sum of r (the bias add stays FP32).
TEST_P(Autocast, LinearIsTheProductOfRoundedOperands) {
  const DType dtype = GetParam();
  const Tensor x = random_param({3, 5, 37}, -2.0f, 2.0f, 1), w = random_param({19, 37}, 2);
  const Tensor b = random_param({19}, 3), r = random_tensor({3, 5, 19}, 4);
  Tensor y;
  {
    AutocastGuard guard(dtype);
    EXPECT_EQ(autocast_dtype(), dtype);
    y = linear(x, w, b);
  }
  EXPECT_EQ(autocast_dtype(), DType::kF32);
  autograd::backward(sum(mul(y, r)));

  const Tensor xr = rounded(x, dtype), wr = rounded(w, dtype), rr = rounded(r, dtype);
  expect_identical(y, linear(xr, wr, b.detach()), "y");
  expect_identical(x.grad(), matmul(rr, wr), "dx");
  expect_identical(w.grad(), matmul(rr.reshape({15, 19}), xr.reshape({15, 37}), /*trans_a=*/true), "dW");
  expect_identical(b.grad(), sum(r, {0, 1}), "db");
  // The rounding really happened: FP32 operands give another y.
  EXPECT_NE(y.to_float_vector(), linear(x.detach(), w.detach(), b.detach()).to_float_vector());
}

// Attention's batched products with transposes, both operands activations.
TEST_P(Autocast, BatchedProductsWithTransposes) {
  const DType dtype = GetParam();
  const Tensor q = random_param({2, 3, 7, 8}, 5), k = random_param({2, 3, 7, 8}, 6), g = random_tensor({2, 3, 7, 7}, 7);
  Tensor scores;
  {
    AutocastGuard guard(dtype);
    scores = matmul(q, k, false, /*trans_b=*/true);
  }
  autograd::backward(scores, g);
  const Tensor qr = rounded(q, dtype), kr = rounded(k, dtype), gr = rounded(g, dtype);
  expect_identical(scores, matmul(qr, kr, false, true), "scores");
  expect_identical(q.grad(), matmul(gr, kr), "dq");
  expect_identical(k.grad(), matmul(gr, qr, /*trans_a=*/true), "dk");
}

// autocast(x) rounds once for several products; each product's FP32 gradient arrives at x and they add up.
TEST_P(Autocast, SharedOperandPassesFp32GradientsThrough) {
  const DType dtype = GetParam();
  const Tensor x = random_param({4, 16}, 8), w1 = random_param({6, 16}, 9), w2 = random_param({5, 16}, 10);
  const Tensor g1 = random_tensor({4, 6}, 11), g2 = random_tensor({4, 5}, 12);
  {
    AutocastGuard guard(dtype);
    const Tensor x16 = autocast(x);
    EXPECT_EQ(x16.dtype(), dtype);
    EXPECT_EQ(autocast(x16).dtype(), dtype) << "already 16-bit: unchanged";
    autograd::backward(add(sum(mul(linear(x16, w1), g1)), sum(mul(linear(x16, w2), g2))));
  }
  const Tensor want =
      add(matmul(rounded(g1, dtype), rounded(w1, dtype)), matmul(rounded(g2, dtype), rounded(w2, dtype)));
  expect_identical(x.grad(), want, "dx");
  // Outside a guard autocast() is the identity, and 16-bit operands of one type still multiply (into FP32).
  EXPECT_TRUE(autocast(x).shares_storage_with(x));
  const Tensor product = matmul(x.detach().to(dtype), w1.detach().to(dtype), false, true);
  expect_identical(product, matmul(rounded(x, dtype), rounded(w1, dtype), false, true), "16-bit operands");
}

// For backward a product keeps a 16-bit copy of an activation operand, and nothing more of a weight (a leaf,
// which lives on anyway and is rounded again in backward): the bytes live after the forward pass are the output
// plus the activation's 16-bit copy (in the host allocator's size classes), where FP32 keeps the caller's own
// tensors and allocates only the output. The gradients are those of LinearIsTheProductOfRoundedOperands.
TEST_P(Autocast, KeepsOnly16BitCopiesForBackward) {
  const DType dtype = GetParam();
  const Tensor x = scale(random_param({64, 96}, 13), 1.0f), w = random_param({80, 96}, 14);  // x: an activation
  auto bytes = [](int64_t elements, int64_t element_size) {
    return static_cast<int64_t>(HostAllocator::size_class(static_cast<size_t>(elements * element_size)));
  };
  auto live = [] { return host_allocator().stats().live_bytes; };
  int64_t before = live();
  Tensor y = linear(x, w);
  EXPECT_EQ(live() - before, bytes(64 * 80, 4)) << "FP32: the output only";
  y = Tensor();
  before = live();
  {
    AutocastGuard guard(dtype);
    y = linear(x, w);
  }
  EXPECT_EQ(live() - before, bytes(64 * 80, 4) + bytes(64 * 96, 2)) << "the output and the 16-bit x";
  const Tensor g = random_tensor({64, 80}, 15);
  autograd::backward(y, g);
  expect_identical(w.grad(), matmul(rounded(g, dtype), rounded(x, dtype), /*trans_a=*/true), "dW");

}

// GELU computes in FP32 but keeps its input in 16 bits for backward: dx = dout * gelu'(round(x)).
TEST_P(Autocast, GeluKeepsItsInputIn16Bits) {
  const DType dtype = GetParam();
  const Tensor x = random_param({7, 33}, -3.0f, 3.0f, 16), g = random_tensor({7, 33}, 17);
  Tensor y;
  {
    AutocastGuard guard(dtype);
    y = gelu(x);
  }
  expect_identical(y, gelu(x.detach()), "y, in FP32");
  autograd::backward(y, g);
  Tensor xr = rounded(x, dtype);
  xr.set_requires_grad(true);
  autograd::backward(gelu(xr), g);
  expect_identical(x.grad(), xr.grad(), "dx");
  Tensor x32 = x.detach().clone();
  x32.set_requires_grad(true);
  autograd::backward(gelu(x32), g);
  EXPECT_NE(x.grad().to_float_vector(), x32.grad().to_float_vector()) << "the input was not rounded";
}

INSTANTIATE_TEST_SUITE_P(Bf16AndF16, Autocast, ::testing::Values(DType::kBF16, DType::kF16),
                         [](const ::testing::TestParamInfo<DType>& info) { return dtype_name(info.param); });

// f16 stops at 65504: a larger activation becomes infinite (which loss scaling then detects), bf16 keeps FP32's
// range but only 8 significant bits (steps of 512 above 2^16: 70000 rounds to 70144; 257 rounds to 256).
TEST(AutocastRange, F16OverflowsWhereBf16Rounds) {
  const Tensor x = Tensor::from_vector(std::vector<float>{70000.0f, 257.0f}, {2, 1});
  const Tensor one = Tensor::ones({1, 1});
  {
    AutocastGuard guard(DType::kF16);
    const std::vector<float> y = matmul(x, one).to_float_vector();
    EXPECT_EQ(y[0], std::numeric_limits<float>::infinity());
    EXPECT_EQ(y[1], 257.0f);
  }
  AutocastGuard guard(DType::kBF16);
  EXPECT_EQ(matmul(x, one).to_float_vector(), (std::vector<float>{70144.0f, 256.0f}));
}

TEST(AutocastRange, GuardsNestAndBadOperandsAreRefused) {
  {
    AutocastGuard outer(DType::kBF16);
    {
      AutocastGuard off(DType::kF32);
      EXPECT_EQ(autocast_dtype(), DType::kF32);
    }
    EXPECT_EQ(autocast_dtype(), DType::kBF16);
    // A 16-bit operand of the other type under a guard.
    EXPECT_THROW(matmul(Tensor::ones({2, 2}, DType::kF16), Tensor::ones({2, 2})), Error);
  }
  EXPECT_THROW(AutocastGuard(DType::kI8), Error);
  // Without a guard, mixed types are an error rather than a silent conversion.
  EXPECT_THROW(matmul(Tensor::ones({2, 2}, DType::kBF16), Tensor::ones({2, 2})), Error);
  EXPECT_THROW(matmul(Tensor::ones({2, 2}, DType::kI32), Tensor::ones({2, 2}, DType::kI32)), Error);
}

}  // namespace
}  // namespace bertforge
