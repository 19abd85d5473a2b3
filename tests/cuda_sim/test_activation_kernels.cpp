// cuda/activation.cu on the CUDA simulator against the CPU kernels (ops/activation.cpp), on a size that is
// not a multiple of the block size, over inputs wide enough to reach the saturated tails.
//
// Tolerance: the CPU evaluates erf, exp and tanh with its own polynomials (documented there to within 4e-7
// absolute for gelu, 1.6e-7 for gelu', 9e-8 for tanh, 3 ulp for sigmoid), the CUDA kernels with the device
// library (erfcf, expf, tanhf: within 2-4 ulp). Two independent approximations of the same function therefore
// differ by a few ulp of the result or a few 1e-7 absolute where the result is small: rel 2e-6 + abs 1e-6.
// The backwards of tanh and sigmoid are plain products of the saved output, so they agree exactly.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/activation.cu"

#include "tests/cuda_sim/kernel_test_support.h"

// The CPU references, declared with the types of their CUDA twins (kernels of one type share a declaration): a
// type that differs from the CPU kernel's definition fails to link.
namespace bertforge::cpu {
decltype(cuda::gelu_forward) gelu_forward, tanh_forward, sigmoid_forward;
decltype(cuda::gelu_backward) gelu_backward, tanh_backward, sigmoid_backward;
}  // namespace bertforge::cpu

namespace bertforge::cuda_sim_test {
namespace {

constexpr int64_t kN = 10007;  // 39.1 blocks of 256
constexpr double kRelTol = 2e-6, kAbsTol = 1e-6;

// Values in [-12, 12) with the awkward points -0, 0 and large magnitudes appended at the end.
std::vector<float> activation_inputs() {
  std::vector<float> x = random_values(kN - 6, -12, 12, 11);
  for (float v : {0.0f, -0.0f, 40.0f, -40.0f, 100.0f, -100.0f}) x.push_back(v);
  return x;
}

using Forward = void (*)(float*, const float*, int64_t);
using Backward = void (*)(float*, const float*, const float*, int64_t);

void expect_forward_matches(Forward cuda_kernel, Forward cpu_kernel, const std::vector<float>& x,
                            const std::string& what) {
  std::vector<float> got(x.size()), want(x.size());
  cuda_kernel(got.data(), x.data(), kN);
  cpu_kernel(want.data(), x.data(), kN);
  expect_close(got, want, kRelTol, kAbsTol, what);
}

void expect_backward_matches(Backward cuda_kernel, Backward cpu_kernel, const std::vector<float>& saved,
                             double rel_tol, double abs_tol, const std::string& what) {
  const std::vector<float> dout = random_values(kN, -2, 2, 12);
  std::vector<float> got(kN), want(kN);
  cuda_kernel(got.data(), saved.data(), dout.data(), kN);
  cpu_kernel(want.data(), saved.data(), dout.data(), kN);
  expect_close(got, want, rel_tol, abs_tol, what);
}

TEST(ActivationKernels, GeluMatchesTheCpu) {
  const std::vector<float> x = activation_inputs();
  expect_forward_matches(cuda::gelu_forward, cpu::gelu_forward, x, "gelu_forward");
  expect_backward_matches(cuda::gelu_backward, cpu::gelu_backward, x, kRelTol, kAbsTol, "gelu_backward");
}

TEST(ActivationKernels, TanhMatchesTheCpu) {
  const std::vector<float> x = activation_inputs();
  expect_forward_matches(cuda::tanh_forward, cpu::tanh_forward, x, "tanh_forward");
  std::vector<float> out(kN);
  cpu::tanh_forward(out.data(), x.data(), kN);
  expect_backward_matches(cuda::tanh_backward, cpu::tanh_backward, out, 0, 0, "tanh_backward");
}

TEST(ActivationKernels, SigmoidMatchesTheCpu) {
  const std::vector<float> x = activation_inputs();
  expect_forward_matches(cuda::sigmoid_forward, cpu::sigmoid_forward, x, "sigmoid_forward");
  std::vector<float> out(kN);
  cpu::sigmoid_forward(out.data(), x.data(), kN);
  expect_backward_matches(cuda::sigmoid_backward, cpu::sigmoid_backward, out, 0, 0, "sigmoid_backward");
}

TEST(ActivationKernels, EmptyInputsLaunchNothing) {
  // A grid of zero blocks is an invalid launch, on a GPU and in the simulator.
  EXPECT_NO_THROW(cuda::gelu_forward(nullptr, nullptr, 0));
  EXPECT_NO_THROW(cuda::gelu_backward(nullptr, nullptr, nullptr, 0));
  EXPECT_NO_THROW(cuda::tanh_forward(nullptr, nullptr, 0));
  EXPECT_NO_THROW(cuda::tanh_backward(nullptr, nullptr, nullptr, 0));
  EXPECT_NO_THROW(cuda::sigmoid_forward(nullptr, nullptr, 0));
  EXPECT_NO_THROW(cuda::sigmoid_backward(nullptr, nullptr, nullptr, 0));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
