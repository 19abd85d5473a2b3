// cuda/softmax.cu on the CUDA simulator against the CPU kernels (ops/softmax.cpp): rows of length 1, an
// odd 301 and attention-like 128 (warp per row, several blocks of rows), and long rows of 3000 and 30522 (block
// per row), with and without a mask shared by groups of rows; masks hold -inf, one mask row is entirely -inf, and
// one logit is NaN.
//
// Tolerances: the CPU's exp is its own polynomial (1.3 ulp), the simulator's is the C library's (the GPU's expf:
// 2 ulp), and the row sums are added in another order (sqrt(n) ulp in practice, n up to 30522), so
// probabilities agree to rel 1e-5; abs 1e-30 absorbs the CPU flushing exp below -87 to 0 where expf still gives
// denormals. Rows of the vocabulary's length are the exception: the CPU adds 30522 terms in a few long running
// sums, which is off by up to 3e-5 relative in a build without FMA (the sanitizer build here; against a double
// softmax the kernel's error was 1.6e-6 on an H100), and that error scales the whole row: rel 5e-5 there. The backward subtracts dot = sum(g p) from g; with g in [-1, 1], |dot| <= 1 and its rounding is a
// few ulp of 1 (6e-8 each), which stays absolute in dlogits = p (g - dot) where p ~ 1 and g ~ dot (a peaked
// row): abs 5e-7 + rel 1e-5. The clip's pass/block decision is taken on the same probs on both sides in the
// backward tests, so it cannot flip.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/softmax.cu"

#include "tests/cuda_sim/kernel_test_support.h"

// The CPU references, declared with the types of their CUDA twins: a type that differs from the CPU kernel's
// definition fails to link.
namespace bertforge::cpu {
decltype(cuda::softmax_forward) softmax_forward;
decltype(cuda::softmax_backward) softmax_backward;
decltype(cuda::clipped_softmax_forward) clipped_softmax_forward;
decltype(cuda::clipped_softmax_backward) clipped_softmax_backward;
}  // namespace bertforge::cpu

namespace bertforge::cuda_sim_test {
namespace {

constexpr double kProbRelTol = 1e-5, kProbAbsTol = 1e-30;
constexpr double kLongRowProbRelTol = 5e-5;  // rows of 4096 columns and more
constexpr int64_t kLongRow = 4096;
constexpr double kGradRelTol = 1e-5, kGradAbsTol = 5e-7;

struct Case {
  int64_t rows, cols, rows_per_mask;  // rows_per_mask 0: no mask
};
constexpr Case kCases[] = {
    {37, 1, 0},      // a row of one: p = 1
    {45, 301, 0},    // odd length, 6 blocks of 8 warps
    {60, 128, 12},   // attention-like: 5 mask rows, each shared by 12 score rows
    {4, 3000, 2},    // block per row, masked
    {3, 30522, 0},   // a vocabulary row
};

std::string name(const Case& c) {
  return std::to_string(c.rows) + "x" + std::to_string(c.cols) + (c.rows_per_mask > 0 ? " masked" : "");
}

// Logits in [-8, 8), and in every third row one spike of +16 whose probability is near 1: both sides of the
// clip are then exercised (the upper clip of zeta > 1 needs p > (1 - gamma) / (zeta - gamma) = 0.92).
std::vector<float> logits_for(const Case& c, uint32_t seed) {
  std::vector<float> logits = random_values(c.rows * c.cols, -8, 8, seed);
  for (int64_t r = 0; r < c.rows; r += 3) logits[r * c.cols + r % c.cols] += 16.0f;
  return logits;
}

// logits_for with a NaN in row 1, which must give a NaN row.
std::vector<float> logits_with_nan_for(const Case& c) {
  std::vector<float> logits = logits_for(c, 41);
  if (c.rows > 1) logits[c.cols + c.cols / 2] = std::nanf("");
  return logits;
}

// An additive mask: 0 or -inf (a quarter of the entries), with mask row 1 entirely -inf (a fully masked row).
std::vector<float> mask_for(const Case& c) {
  if (c.rows_per_mask == 0) return {};
  const int64_t mask_rows = c.rows / c.rows_per_mask;
  const std::vector<float> u = random_values(mask_rows * c.cols, 0, 1, 42);
  std::vector<float> mask(u.size());
  for (size_t i = 0; i < u.size(); ++i) mask[i] = u[i] < 0.25f ? -INFINITY : 0.0f;
  if (mask_rows > 1) std::fill(mask.begin() + c.cols, mask.begin() + 2 * c.cols, -INFINITY);
  return mask;
}

const float* data_or_null(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

TEST(SoftmaxKernels, ForwardMatchesTheCpu) {
  for (const Case& c : kCases) {
    const std::vector<float> logits = logits_with_nan_for(c), mask = mask_for(c);
    std::vector<float> got(c.rows * c.cols), want(c.rows * c.cols);
    cuda::softmax_forward(got.data(), logits.data(), data_or_null(mask), c.rows, c.cols, c.rows_per_mask);
    cpu::softmax_forward(want.data(), logits.data(), data_or_null(mask), c.rows, c.cols, c.rows_per_mask);
    expect_close(got, want, c.cols >= kLongRow ? kLongRowProbRelTol : kProbRelTol, kProbAbsTol,
                 "softmax_forward " + name(c));
  }
}

TEST(SoftmaxKernels, BackwardMatchesTheCpu) {
  for (const Case& c : kCases) {
    const int64_t n = c.rows * c.cols;
    const std::vector<float> logits = logits_for(c, 43), dprobs = random_values(n, -1, 1, 44);
    std::vector<float> probs(n), got(n), want(n);
    cpu::softmax_forward(probs.data(), logits.data(), nullptr, c.rows, c.cols, 0);
    cuda::softmax_backward(got.data(), dprobs.data(), probs.data(), c.rows, c.cols);
    cpu::softmax_backward(want.data(), dprobs.data(), probs.data(), c.rows, c.cols);
    expect_close(got, want, kGradRelTol, kGradAbsTol, "softmax_backward " + name(c));
  }
}

// The papers' BERT setting, and a stretched one (zeta > 1) whose upper clip is active on peaked rows.
struct Clip {
  float gamma, zeta;
};
constexpr Clip kClips[] = {{-0.025f, 1.0f}, {-0.1f, 1.1f}};

TEST(SoftmaxKernels, ClippedForwardMatchesTheCpu) {
  for (const Clip& clip : kClips) {
    for (const Case& c : kCases) {
      const std::vector<float> logits = logits_with_nan_for(c), mask = mask_for(c);
      const int64_t n = c.rows * c.cols;
      std::vector<float> got_out(n), got_probs(n), want_out(n), want_probs(n);
      cuda::clipped_softmax_forward(got_out.data(), got_probs.data(), logits.data(), data_or_null(mask), c.rows,
                                    c.cols, c.rows_per_mask, clip.gamma, clip.zeta);
      cpu::clipped_softmax_forward(want_out.data(), want_probs.data(), logits.data(), data_or_null(mask), c.rows,
                                    c.cols, c.rows_per_mask, clip.gamma, clip.zeta);
      const std::string what = name(c) + " gamma " + std::to_string(clip.gamma);
      const double rel_tol = c.cols >= kLongRow ? kLongRowProbRelTol : kProbRelTol;
      expect_close(got_probs, want_probs, rel_tol, kProbAbsTol, "clipped_softmax_forward probs " + what);
      // out = (zeta - gamma) p + gamma cancels near the lower clip: the probs' relative error becomes absolute.
      expect_close(got_out, want_out, rel_tol, 1e-6 * (rel_tol / kProbRelTol), "clipped_softmax_forward out " + what);
    }
  }
}

TEST(SoftmaxKernels, ClippedBackwardMatchesTheCpu) {
  for (const Clip& clip : kClips) {
    for (const Case& c : kCases) {
      const int64_t n = c.rows * c.cols;
      const std::vector<float> logits = logits_for(c, 45), dout = random_values(n, -1, 1, 46);
      std::vector<float> out(n), probs(n), got(n), want(n);
      cpu::clipped_softmax_forward(out.data(), probs.data(), logits.data(), nullptr, c.rows, c.cols, 0, clip.gamma,
                                    clip.zeta);
      cuda::clipped_softmax_backward(got.data(), dout.data(), probs.data(), c.rows, c.cols, clip.gamma, clip.zeta);
      cpu::clipped_softmax_backward(want.data(), dout.data(), probs.data(), c.rows, c.cols, clip.gamma, clip.zeta);
      expect_close(got, want, kGradRelTol, kGradAbsTol,
                   "clipped_softmax_backward " + name(c) + " gamma " + std::to_string(clip.gamma));
    }
  }
}

TEST(SoftmaxKernels, BackwardMayWriteOverItsGradientInput) {
  const int64_t rows = 9, cols = 200;
  const std::vector<float> logits = random_values(rows * cols, -4, 4, 47);
  const std::vector<float> dprobs = random_values(rows * cols, -1, 1, 48);
  std::vector<float> probs(rows * cols), want(rows * cols);
  cpu::softmax_forward(probs.data(), logits.data(), nullptr, rows, cols, 0);
  cpu::softmax_backward(want.data(), dprobs.data(), probs.data(), rows, cols);
  std::vector<float> in_place = dprobs;
  cuda::softmax_backward(in_place.data(), in_place.data(), probs.data(), rows, cols);
  expect_close(in_place, want, kGradRelTol, kGradAbsTol, "softmax_backward in place");
}

TEST(SoftmaxKernels, EmptyInputsLaunchNothing) {
  // A grid of zero blocks is an invalid launch, on a GPU and in the simulator.
  EXPECT_NO_THROW(cuda::softmax_forward(nullptr, nullptr, nullptr, 0, 128, 0));
  EXPECT_NO_THROW(cuda::softmax_backward(nullptr, nullptr, nullptr, 0, 5000));
  EXPECT_NO_THROW(cuda::clipped_softmax_forward(nullptr, nullptr, nullptr, nullptr, 0, 128, 0, -0.025f, 1.0f));
  EXPECT_NO_THROW(cuda::clipped_softmax_backward(nullptr, nullptr, nullptr, 7, 0, -0.025f, 1.0f));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
