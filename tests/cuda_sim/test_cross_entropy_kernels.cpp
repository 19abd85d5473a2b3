// cuda/cross_entropy.cu on the CUDA simulator against the CPU kernels, on rows of 1, 37 and
// 30522 classes (BERT's vocabulary), with ignored rows, large logits, -inf and NaN logits.
// The kernels sum exp in float, per thread and then as a tree, and use the device expf; the
// CPU sums in double with its own polynomial exp (1.3 ulp). The tolerances below follow.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/cross_entropy.cu"

#include <limits>

#include "tests/cuda_sim/kernel_test_support.h"

// The CPU references, declared with the types of their CUDA twins: a type that differs from the CPU kernel's
// definition fails to link.
namespace bertforge::cpu {
decltype(cuda::cross_entropy_forward) cross_entropy_forward;
decltype(cuda::cross_entropy_backward) cross_entropy_backward;
}  // namespace bertforge::cpu

namespace bertforge::cuda_sim_test {
namespace {

constexpr int64_t kIgnore = -100;

struct CrossEntropyCase {
  int64_t rows, classes;
};

// Logits in [-8, 8) with special rows (for rows >= 5): row 1 is ignored, row 2 is shifted by
// +1000 (stability), row 3 has -inf logits, row 4 holds a NaN. Targets are spread over the classes.
void make_inputs(const CrossEntropyCase& c, std::vector<float>& logits, std::vector<int64_t>& targets) {
  logits = random_values(c.rows * c.classes, -8, 8, 11);
  targets.resize(c.rows);
  for (int64_t r = 0; r < c.rows; ++r) targets[r] = (r * 7919) % c.classes;
  if (c.rows < 5) return;
  targets[1] = kIgnore;
  for (int64_t k = 0; k < c.classes; ++k) logits[2 * c.classes + k] += 1000.0f;
  for (int64_t k = 0; k < c.classes; k += 3) {
    if (k != targets[3]) logits[3 * c.classes + k] = -INFINITY;
  }
  logits[4 * c.classes + c.classes / 2] = std::numeric_limits<float>::quiet_NaN();
}

const CrossEntropyCase kCases[] = {{1, 1}, {9, 1}, {7, 37}, {6, 1000}, {5, 30522}};

TEST(CrossEntropyKernels, ForwardMatchesTheCpu) {
  for (const CrossEntropyCase& c : kCases) {
    const std::string what = std::to_string(c.rows) + " x " + std::to_string(c.classes);
    std::vector<float> logits;
    std::vector<int64_t> targets;
    make_inputs(c, logits, targets);
    std::vector<float> loss(c.rows), lse(c.rows), want_loss(c.rows), want_lse(c.rows);
    cuda::cross_entropy_forward(loss.data(), lse.data(), logits.data(), targets.data(), c.rows, c.classes, kIgnore);
    cpu::cross_entropy_forward(want_loss.data(), want_lse.data(), logits.data(), targets.data(), c.rows, c.classes,
                                kIgnore);
    // The float sum of up to 30522 terms in (0, 1] (60 per thread, then a tree) is within a few
    // 1e-7 relative of the CPU's double sum, so log(sum) is within a few 1e-7 absolute; lse
    // also rounds at its own magnitude (ulp 6e-5 at 1000, within the relative term). Measured
    // on an H100 over 4096 rows: loss within 1.9e-6, lse within 9.6e-7.
    expect_close(loss, want_loss, 1e-6, 5e-6, "loss, " + what);
    expect_close(lse, want_lse, 1e-6, 5e-6, "lse, " + what);
  }
}

TEST(CrossEntropyKernels, BackwardMatchesTheCpu) {
  for (const CrossEntropyCase& c : kCases) {
    const std::string what = std::to_string(c.rows) + " x " + std::to_string(c.classes);
    std::vector<float> logits;
    std::vector<int64_t> targets;
    make_inputs(c, logits, targets);
    std::vector<float> loss(c.rows), lse(c.rows);
    cpu::cross_entropy_forward(loss.data(), lse.data(), logits.data(), targets.data(), c.rows, c.classes, kIgnore);
    const float dloss = 0.37f;
    std::vector<float> got(c.rows * c.classes, -1.0f), want(c.rows * c.classes);  // -1: ignored rows must be written
    cuda::cross_entropy_backward(got.data(), logits.data(), lse.data(), targets.data(), c.rows, c.classes, kIgnore,
                                 dloss);
    cpu::cross_entropy_backward(want.data(), logits.data(), lse.data(), targets.data(), c.rows, c.classes, kIgnore,
                                 dloss);
    // Both compute dloss * exp(logit - lse) from the same lse: the exps differ by a few ulp
    // (relative term; 2.4e-7 measured on an H100). At the target, p - 1 cancels when p is near
    // 1; the rounding of the product before the subtraction is then an absolute error of about
    // ulp(dloss) = 3e-8.
    expect_close(got, want, 1e-6, 1e-7, "dlogits, " + what);
  }
}

TEST(CrossEntropyKernels, EmptyInputsLaunchNothing) {
  // A grid of zero blocks is an invalid launch, on a GPU and in the simulator.
  EXPECT_NO_THROW(cuda::cross_entropy_forward(nullptr, nullptr, nullptr, nullptr, 0, 30522, kIgnore));
  EXPECT_NO_THROW(cuda::cross_entropy_backward(nullptr, nullptr, nullptr, nullptr, 0, 30522, kIgnore, 1.0f));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
