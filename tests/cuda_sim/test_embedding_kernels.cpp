// cuda/embedding.cu on the CUDA simulator against the CPU kernels. The lookup is a copy, so
// it is exact. The gradient sums the rows of each id in another order than the CPU's (per
// chunk of ids, then atomically), so it agrees to float rounding of those sums.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/embedding.cu"

#include <random>

#include "tests/cuda_sim/kernel_test_support.h"

// The CPU references, declared with the types of their CUDA twins: a type that differs from the CPU kernel's
// definition fails to link.
namespace bertforge::cpu {
decltype(cuda::embedding_forward) embedding_forward;
decltype(cuda::embedding_backward) embedding_backward;
}  // namespace bertforge::cpu

namespace bertforge::cuda_sim_test {
namespace {

// n ids uniform in [0, vocab).
std::vector<int64_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
  std::vector<int64_t> ids(n);
  for (int64_t& id : ids) id = pick(rng);
  return ids;
}

struct EmbeddingCase {
  std::string name;
  std::vector<int64_t> ids;
  int64_t vocab, dim;
};

std::vector<EmbeddingCase> embedding_cases() {
  std::vector<int64_t> token_types(1000);  // 10 samples of 100 tokens: segment A (60 zeros) then B (40 ones)
  for (int64_t i = 0; i < 1000; ++i) token_types[i] = i % 100 < 60 ? 0 : 1;
  std::vector<int64_t> positions(777);  // positions 0..36 repeated: short runs, the same ids in every chunk
  for (int64_t i = 0; i < 777; ++i) positions[i] = i % 37;
  return {
      {"one id, one column", {0}, 1, 1},
      {"random words", random_ids(45, 50, 1), 50, 301},  // 2 chunks of ids, 3 column tiles
      {"token types", token_types, 2, 97},               // 32 chunks, every id repeated 400+ times
      {"positions", positions, 37, 130},                 // 2 column tiles, the last of 2 columns
      {"every row the same id", std::vector<int64_t>(200, 3), 5, 33},
      {"long rows", random_ids(3, 4, 2), 4, 4099},  // 33 column tiles
  };
}

TEST(EmbeddingKernels, ForwardCopiesTheCpuRowsExactly) {
  for (const EmbeddingCase& c : embedding_cases()) {
    const int64_t n = static_cast<int64_t>(c.ids.size());
    const std::vector<float> table = random_values(c.vocab * c.dim, -1, 1, 3);
    std::vector<float> got(n * c.dim), want(n * c.dim);
    cuda::embedding_forward(got.data(), c.ids.data(), table.data(), n, c.dim);
    cpu::embedding_forward(want.data(), c.ids.data(), table.data(), n, c.dim);
    expect_close(got, want, 0, 0, "forward, " + c.name);
  }
}

TEST(EmbeddingKernels, BackwardAddsTheScatteredGradientLikeTheCpu) {
  for (const EmbeddingCase& c : embedding_cases()) {
    const int64_t n = static_cast<int64_t>(c.ids.size());
    const std::vector<float> dout = random_values(n * c.dim, -1, 1, 4);
    // A non-zero starting table checks that the kernel adds to dtable rather than overwriting it.
    std::vector<float> got = random_values(c.vocab * c.dim, -1, 1, 5), want = got;
    cuda::embedding_backward(got.data(), c.ids.data(), dout.data(), n, c.dim);
    cpu::embedding_backward(want.data(), c.ids.data(), dout.data(), n, c.dim);
    // Up to 600 terms in [-1, 1) per float, summed in another order: the rounding errors of
    // partial sums of size ~30 (ulp 2e-6) stay well under 1e-4 for sums of this length. (On an
    // H100, 2000 repeats of one id gave differences up to 1.5e-4: the error grows with the
    // number of repeats.)
    expect_close(got, want, 1e-6, 1e-4, "backward, " + c.name);
  }
}

TEST(EmbeddingKernels, EmptyInputsLaunchNothing) {
  // A grid of zero blocks is an invalid launch, on a GPU and in the simulator.
  EXPECT_NO_THROW(cuda::embedding_forward(nullptr, nullptr, nullptr, 0, 768));
  EXPECT_NO_THROW(cuda::embedding_backward(nullptr, nullptr, nullptr, 16, 0));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
