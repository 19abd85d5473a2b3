// cuda/layernorm.cu on the CUDA simulator against the CPU kernels (ops/layernorm.cpp), on row lengths of 1,
// an odd 301, 77, and a long 3000 (not multiples of 32), with several blocks of rows and of columns, and inputs offset
// from zero so that a one-pass variance would lose digits.
//
// Tolerances: both sides compute the same formulas in float, but the CUDA kernels add a row in 32 interleaved
// partial sums combined by a butterfly, the CPU in 4 quarters, so sums differ in rounding. The relative error of
// a float sum of n terms grows like sqrt(n) ulp in practice; for the statistics and the normalised outputs (values
// of order 1) rel 1e-5 + abs 1e-5 leaves a wide margin at 3000 columns. dweight and dbias are sums over all rows
// of terms of either sign that may nearly cancel, so their error is absolute, about eps * sum |term|: abs
// 1e-4 (sum |term| stays below ~200 here) plus rel 1e-5.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/layernorm.cu"

#include "tests/cuda_sim/kernel_test_support.h"

// The CPU references, declared with the types of their CUDA twins: a type that differs from the CPU kernel's
// definition fails to link.
namespace bertforge::cpu {
decltype(cuda::layernorm_forward) layernorm_forward;
decltype(cuda::layernorm_backward) layernorm_backward;
}  // namespace bertforge::cpu

namespace bertforge::cuda_sim_test {
namespace {

constexpr float kEps = 1e-12f;  // BERT's

struct Case {
  int64_t rows, cols;
};
// 1 column; 45 rows = 5.6 blocks of 8 warps and 301 columns = 37.6 column slices of 8; 300 rows = 2.3 rounds of
// the dweight kernel's 128 row streams (fewer rows take its one-warp blocks); a long row of 3000.
constexpr Case kCases[] = {{37, 1}, {45, 301}, {300, 77}, {5, 3000}};

std::string name(const Case& c) { return std::to_string(c.rows) + "x" + std::to_string(c.cols); }

TEST(LayerNormKernels, ForwardMatchesTheCpu) {
  for (const Case& c : kCases) {
    const int64_t n = c.rows * c.cols;
    std::vector<float> x = random_values(n, -2, 2, 21);
    for (float& v : x) v += 20.0f;  // |mean| >> std
    const std::vector<float> weight = random_values(c.cols, 0.5, 1.5, 22), bias = random_values(c.cols, -1, 1, 23);
    std::vector<float> got(n), want(n), got_mean(c.rows), want_mean(c.rows), got_rstd(c.rows), want_rstd(c.rows);
    cuda::layernorm_forward(got.data(), got_mean.data(), got_rstd.data(), x.data(), weight.data(), bias.data(),
                            c.rows, c.cols, kEps);
    cpu::layernorm_forward(want.data(), want_mean.data(), want_rstd.data(), x.data(), weight.data(), bias.data(),
                            c.rows, c.cols, kEps);
    expect_close(got, want, 1e-5, 1e-5, "out " + name(c));
    expect_close(got_mean, want_mean, 1e-6, 0, "mean " + name(c));
    expect_close(got_rstd, want_rstd, 1e-5, 0, "rstd " + name(c));
  }
}

TEST(LayerNormKernels, BackwardMatchesTheCpu) {
  for (const Case& c : kCases) {
    const int64_t n = c.rows * c.cols;
    std::vector<float> x = random_values(n, -2, 2, 31);
    for (float& v : x) v += 20.0f;
    const std::vector<float> weight = random_values(c.cols, 0.5, 1.5, 32), bias = random_values(c.cols, -1, 1, 33);
    const std::vector<float> dout = random_values(n, -1, 1, 34);
    std::vector<float> out(n), mean(c.rows), rstd(c.rows);
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), weight.data(), bias.data(), c.rows,
                            c.cols, kEps);
    // NaN-filled outputs: every element must be written, not accumulated.
    const float nan = std::nanf("");
    std::vector<float> got_dx(n, nan), got_dw(c.cols, nan), got_db(c.cols, nan);
    std::vector<float> want_dx(n), want_dw(c.cols), want_db(c.cols);
    cuda::layernorm_backward(got_dx.data(), got_dw.data(), got_db.data(), dout.data(), x.data(), weight.data(),
                             mean.data(), rstd.data(), c.rows, c.cols);
    cpu::layernorm_backward(want_dx.data(), want_dw.data(), want_db.data(), dout.data(), x.data(), weight.data(),
                             mean.data(), rstd.data(), c.rows, c.cols);
    expect_close(got_dx, want_dx, 1e-5, 1e-5, "dx " + name(c));
    expect_close(got_dw, want_dw, 1e-5, 1e-4, "dweight " + name(c));
    expect_close(got_db, want_db, 1e-5, 1e-4, "dbias " + name(c));
  }
}

TEST(LayerNormKernels, BackwardWithNoRowsWritesZeroParameterGradients) {
  std::vector<float> dw(7, 1.0f), db(7, 1.0f);
  cuda::layernorm_backward(nullptr, dw.data(), db.data(), nullptr, nullptr, nullptr, nullptr, nullptr, 0, 7);
  EXPECT_EQ(dw, std::vector<float>(7, 0.0f));
  EXPECT_EQ(db, std::vector<float>(7, 0.0f));
}

TEST(LayerNormKernels, EmptyInputsLaunchNothing) {
  // A grid of zero blocks is an invalid launch, on a GPU and in the simulator.
  EXPECT_NO_THROW(cuda::layernorm_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, 768, kEps));
  EXPECT_NO_THROW(
      cuda::layernorm_backward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, 0));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
