// cuda/fake_quantize.cu on the CUDA simulator against the CPU kernel: bit-identical (the same IEEE operations),
// on 8- and 4-bit parameters, ties that round half to even, values beyond both ends of the grid, infinities and
// NaN, over a size that is not a multiple of the block.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/fake_quantize.cu"

#include <cmath>

#include "tests/cuda_sim/kernel_test_support.h"

// The CPU references, declared with the types of their CUDA twins: a type that differs from the CPU kernel's
// definition fails to link.
namespace bertforge::cpu {
decltype(cuda::fake_quantize) fake_quantize;
}  // namespace bertforge::cpu

namespace bertforge::cuda_sim_test {
namespace {

TEST(FakeQuantizeKernels, MatchTheCpuBitForBit) {
  std::vector<float> x = random_values(1001, -6, 9, 3);
  const float scale = 0.05f;
  for (int k = -3; k <= 3; ++k) x.push_back((static_cast<float>(k) + 0.5f) * scale);  // ties
  x.insert(x.end(), {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 1e30f, -1e30f});
  const int64_t n = static_cast<int64_t>(x.size());
  // (scale, zero point, q_max): 8 bits over [-6, 9), 4 bits over [-1, 2], and a grid starting at 0.
  const float parameters[][3] = {{15.0f / 255.0f, 102.0f, 255.0f}, {0.2f, 5.0f, 15.0f}, {scale, 0.0f, 255.0f}};
  for (const auto& [s, z, q_max] : parameters) {
    std::vector<float> got(n), want(n);
    cuda::fake_quantize(got.data(), x.data(), n, s, z, q_max);
    cpu::fake_quantize(want.data(), x.data(), n, s, z, q_max);
    expect_close(got, want, 0, 0, "scale " + std::to_string(s) + " zero point " + std::to_string(z));
  }
  EXPECT_NO_THROW(cuda::fake_quantize(nullptr, nullptr, 0, 1.0f, 0.0f, 255.0f));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
