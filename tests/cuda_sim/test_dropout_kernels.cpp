// cuda/dropout.cu on the CUDA simulator against the CPU kernels. Masks are pure functions of
// the Philox stream and the kept values are one float multiply, so outputs must be
// bit-identical to the CPU's (no tolerance; NaN payloads aside), including for inf/NaN inputs, unaligned and
// aliased pointers, lengths that are not multiples of 4, and p = 0 or 1.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/dropout.cu"

#include <cmath>
#include <cstring>
#include <limits>

#include "tests/cuda_sim/kernel_test_support.h"

// The CPU references, declared with the types of their CUDA twins (kernels of one type share a declaration): a
// type that differs from the CPU kernel's definition fails to link.
namespace bertforge::cpu {
decltype(cuda::dropout_forward) dropout_forward, dropout_backward;
decltype(cuda::head_dropout_forward) head_dropout_forward, head_dropout_backward;
}  // namespace bertforge::cpu

namespace bertforge::cuda_sim_test {
namespace {

constexpr uint64_t kSeed = 0x0123456789ABCDEFull;    // both key words non-zero
constexpr uint64_t kOffset = 0xFEDCBA9876543210ull;  // both counter words non-zero

// got and want hold the same bits at every index, or are both NaN (a GPU turns a kept NaN
// into its canonical NaN, x86 keeps the payload); names the first five misses.
void expect_bits_equal(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int misses = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool same = std::memcmp(&got[i], &want[i], sizeof(float)) == 0 || (std::isnan(got[i]) && std::isnan(want[i]));
    if (!same && ++misses <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: CUDA " << got[i] << ", CPU " << want[i];
    }
  }
  EXPECT_EQ(misses, 0) << what << ": " << misses << " of " << got.size() << " differ";
}

// n values in [-2, 2) with an inf, a -inf and a NaN near the front (a dropped one must become 0).
std::vector<float> dropout_input(int64_t n, uint32_t seed) {
  std::vector<float> x = random_values(n, -2, 2, seed);
  const float specials[] = {INFINITY, -INFINITY, std::numeric_limits<float>::quiet_NaN()};
  for (int64_t i = 0; i < 3 && 2 * i < n; ++i) x[2 * i] = specials[i];
  return x;
}

TEST(DropoutKernels, ForwardAndBackwardMasksAreBitIdenticalToTheCpu) {
  // 1 and 3: a single partial Philox block; 5003: 5 CUDA blocks of 1024 elements, the last
  // partial, with a 3-element tail.
  for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5003}}) {
    for (float p : {0.0f, 0.1f, 0.5f, 0.9f, 1.0f}) {
      const std::string what = "n " + std::to_string(n) + ", p " + std::to_string(p);
      const std::vector<float> x = dropout_input(n, 7);
      std::vector<float> got(n), want(n);
      cuda::dropout_forward(got.data(), x.data(), n, p, kSeed, kOffset);
      cpu::dropout_forward(want.data(), x.data(), n, p, kSeed, kOffset);
      expect_bits_equal(got, want, "forward, " + what);
      cuda::dropout_backward(got.data(), x.data(), n, p, kSeed, kOffset);
      cpu::dropout_backward(want.data(), x.data(), n, p, kSeed, kOffset);
      expect_bits_equal(got, want, "backward, " + what);
    }
  }
}

TEST(DropoutKernels, HalfTheElementsAreDroppedAtPOneHalf) {
  const int64_t n = 5003;
  const std::vector<float> x(n, 1.0f);
  std::vector<float> out(n);
  cuda::dropout_forward(out.data(), x.data(), n, 0.5f, kSeed, kOffset);
  int64_t kept = 0;
  for (float v : out) kept += v != 0.0f;
  EXPECT_NEAR(static_cast<double>(kept) / n, 0.5, 0.03);  // 0.03 is 4.2 standard deviations of the fraction
}

TEST(DropoutKernels, UnalignedAndInPlaceBuffersGiveTheCpuMask) {
  // Starting one float into the buffers makes them 4- but not 16-byte aligned (the scalar path).
  const int64_t n = 2051;
  const std::vector<float> x = dropout_input(n + 1, 8);
  std::vector<float> got(n + 1), want(n + 1);
  cuda::dropout_forward(got.data() + 1, x.data() + 1, n, 0.3f, kSeed, kOffset);
  cpu::dropout_forward(want.data() + 1, x.data() + 1, n, 0.3f, kSeed, kOffset);
  expect_bits_equal(got, want, "unaligned");
  std::vector<float> in_place = x;
  cuda::dropout_forward(in_place.data(), in_place.data(), n + 1, 0.3f, kSeed, kOffset);
  cpu::dropout_forward(want.data(), x.data(), n + 1, 0.3f, kSeed, kOffset);
  expect_bits_equal(in_place, want, "in place");
}

struct HeadDropoutCase {
  int64_t batch, heads, inner;
  float p;
};

TEST(DropoutKernels, HeadDropoutIsBitIdenticalToTheCpu) {
  const HeadDropoutCase cases[] = {
      {5, 12, 37, 0.3f},   // BERT's 12 heads, 3 heads per Philox block
      {4, 12, 1, 0.9f},    // rows of one element
      {3, 1, 29, 0.5f},    // a single head: a dropped draw is redrawn
      {6, 2, 3, 0.95f},    // two heads at high p: frequent redraws
      {2, 64, 5, 0.5f},    // the most heads the mask holds
      {2, 3, 9001, 0.4f},  // rows of 3 chunks, the last partial
      {3, 12, 17, 0.0f},   // nothing dropped, scale 1
  };
  for (const HeadDropoutCase& c : cases) {
    const std::string what = "batch " + std::to_string(c.batch) + ", heads " + std::to_string(c.heads) + ", inner " +
                             std::to_string(c.inner) + ", p " + std::to_string(c.p);
    const int64_t n = c.batch * c.heads * c.inner;
    const std::vector<float> x = dropout_input(n, 9);
    std::vector<float> got(n), want(n);
    cuda::head_dropout_forward(got.data(), x.data(), c.batch, c.heads, c.inner, c.p, kSeed, kOffset);
    cpu::head_dropout_forward(want.data(), x.data(), c.batch, c.heads, c.inner, c.p, kSeed, kOffset);
    expect_bits_equal(got, want, "forward, " + what);
    std::vector<float> in_place = x;  // backward in place, as an op may call it
    cuda::head_dropout_backward(in_place.data(), in_place.data(), c.batch, c.heads, c.inner, c.p, kSeed, kOffset);
    cpu::head_dropout_backward(want.data(), x.data(), c.batch, c.heads, c.inner, c.p, kSeed, kOffset);
    expect_bits_equal(in_place, want, "backward, " + what);
  }
}

TEST(DropoutKernels, EmptyInputsLaunchNothing) {
  // A grid of zero blocks is an invalid launch, on a GPU and in the simulator.
  EXPECT_NO_THROW(cuda::dropout_forward(nullptr, nullptr, 0, 0.1f, kSeed, kOffset));
  EXPECT_NO_THROW(cuda::head_dropout_forward(nullptr, nullptr, 0, 12, 64, 0.1f, kSeed, kOffset));
  EXPECT_NO_THROW(cuda::head_dropout_backward(nullptr, nullptr, 4, 12, 0, 0.1f, kSeed, kOffset));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
