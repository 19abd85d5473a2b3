// cuda/elementwise.cu on the CUDA simulator against the CPU kernels, on sizes that are not
// multiples of the block size. Element-wise results are exact; column sums may add in
// another order than the CPU's, so they agree to float rounding.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/elementwise.cu"

#include "tests/cuda_sim/kernel_test_support.h"

// The CPU references, declared with the types of their CUDA twins (kernels of one type share a declaration): a
// type that differs from the CPU kernel's definition fails to link.
namespace bertforge::cpu {
decltype(cuda::binary) binary;
decltype(cuda::scale) scale;
decltype(cuda::add_bias) add_bias, scale_channels;
decltype(cuda::sum_rows) sum_rows;
decltype(cuda::sum_of_squares_chunks) sum_of_squares_chunks;
}  // namespace bertforge::cpu

namespace bertforge::cuda_sim_test {
namespace {

constexpr int64_t kRows = 37, kCols = 301;  // 11137 elements: 43.5 blocks of 256

TEST(ElementwiseKernels, BinaryScaleAndBiasMatchTheCpuExactly) {
  const int64_t n = kRows * kCols;
  const std::vector<float> a = random_values(n, -3, 3, 1), b = random_values(n, -3, 3, 2);
  const std::vector<float> bias = random_values(kCols, -1, 1, 3);
  for (BinaryOp op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul}) {
    std::vector<float> got(n), want(n);
    cuda::binary(op, got.data(), a.data(), b.data(), n);
    cpu::binary(op, want.data(), a.data(), b.data(), n);
    expect_close(got, want, 0, 0, "binary op " + std::to_string(static_cast<int>(op)));
  }
  std::vector<float> got(n), want(n);
  cuda::scale(got.data(), a.data(), -0.37f, n);
  cpu::scale(want.data(), a.data(), -0.37f, n);
  expect_close(got, want, 0, 0, "scale");
  cuda::add_bias(got.data(), a.data(), bias.data(), kRows, kCols);
  cpu::add_bias(want.data(), a.data(), bias.data(), kRows, kCols);
  expect_close(got, want, 0, 0, "add_bias");
  cuda::scale_channels(got.data(), a.data(), bias.data(), kRows, kCols);
  cpu::scale_channels(want.data(), a.data(), bias.data(), kRows, kCols);
  expect_close(got, want, 0, 0, "scale_channels");
}

TEST(ElementwiseKernels, SumRowsMatchesTheCpu) {
  // One row chunk; several row chunks (blocks add with atomics); one column (a whole-tensor sum, several
  // blocks); a few columns. Sums of up to 20000 values in [-2, 2): float rounding of the other order.
  const std::pair<int64_t, int64_t> shapes[] = {{kRows, kCols}, {700, 45}, {20000, 1}, {513, 3}, {1, 77}};
  for (const auto& [rows, cols] : shapes) {
    const std::vector<float> x = random_values(rows * cols, -2, 2, 4);
    std::vector<float> got(cols, 123.0f), want(cols);  // garbage in `out` must not leak into the sums
    cuda::sum_rows(got.data(), x.data(), rows, cols);
    cpu::sum_rows(want.data(), x.data(), rows, cols);
    expect_close(got, want, 1e-5, 1e-3, "sum_rows " + std::to_string(rows) + "x" + std::to_string(cols));
  }
}

TEST(ElementwiseKernels, EmptyInputsLaunchNothing) {
  // A grid of zero blocks is an invalid launch, on a GPU and in the simulator.
  EXPECT_NO_THROW(cuda::binary(BinaryOp::kAdd, nullptr, nullptr, nullptr, 0));
  EXPECT_NO_THROW(cuda::sum_rows(nullptr, nullptr, 5, 0));
}

// 40 tensors (two launches of kMultiTensorGroup and 8), one of three chunks, some empty: every chunk's partial sum
// of squares, in the CPU's order of chunks, to float rounding (each block adds in its own order).
TEST(ElementwiseKernels, SumOfSquaresChunksMatchesTheCpu) {
  std::vector<std::vector<float>> values;
  std::vector<const float*> tensors;
  std::vector<int64_t> sizes;
  for (int t = 0; t < 40; ++t) {
    const int64_t n = t == 33 ? 2 * kMultiTensorChunk + 3 : t % 7 == 0 ? 0 : 1 + 37 * t;
    values.push_back(random_values(n, -2, 2, 50 + t));
    sizes.push_back(n);
  }
  for (const auto& v : values) tensors.push_back(v.data());
  const int64_t chunks = multi_tensor_chunks(sizes.data(), static_cast<int64_t>(sizes.size()));
  ASSERT_EQ(chunks, 40 - 6 + 2);  // 6 empty tensors, one of 3 chunks
  std::vector<float> got(chunks, NAN), want(chunks);
  cuda::sum_of_squares_chunks(got.data(), tensors.data(), sizes.data(), static_cast<int64_t>(sizes.size()));
  cpu::sum_of_squares_chunks(want.data(), tensors.data(), sizes.data(), static_cast<int64_t>(sizes.size()));
  expect_close(got, want, 1e-5, 1e-6, "sum_of_squares_chunks");
  EXPECT_NO_THROW(cuda::sum_of_squares_chunks(nullptr, nullptr, nullptr, 0));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
