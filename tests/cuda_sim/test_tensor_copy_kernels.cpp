// cuda/tensor_copy.cuh on the CUDA simulator: strided copies of permuted and sliced views
// against Tensor::copy_ on the CPU (exact: elements are moved, not computed), conversions
// between f32, bf16 and f16 (exact: the same rounding code, core/half.h), and fills.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/tensor_copy.cuh"

#include <cmath>

#include "core/tensor.h"
#include "tests/cuda_sim/kernel_test_support.h"

namespace bertforge::cuda_sim_test {
namespace {

// Copies `view` (a CPU view) into a contiguous tensor with the CUDA kernel.
Tensor copy_with_kernel(const Tensor& view) {
  Tensor out = Tensor::empty(view.shape(), view.dtype());
  const char* src_base = static_cast<const char*>(view.raw_data());
  cuda::copy_strided(out.raw_data(), out.strides().data(), src_base, view.strides().data(), view.shape().data(),
                     static_cast<int>(view.dim()), dtype_size(view.dtype()));
  return out;
}

TEST(TensorCopyKernels, PermutedAttentionHeadsMatchTheCpuCopy) {
  // (B, T, H, D) -> (B, H, T, D): how attention splits heads; 3 * 7 * 5 * 13 = 1365 elements, not a block multiple.
  const Tensor x = test_support::random_tensor({3, 7, 5, 13}, 1);
  const Tensor view = x.permute({0, 2, 1, 3});
  EXPECT_EQ(copy_with_kernel(view).to_float_vector(), view.contiguous().to_float_vector());
}

TEST(TensorCopyKernels, TransposedAndOffsetViewsOfEveryElementSize) {
  const Tensor x = test_support::random_tensor({9, 33}, 2);
  const Tensor transposed = x.transpose(0, 1);
  EXPECT_EQ(copy_with_kernel(transposed).to_float_vector(), transposed.contiguous().to_float_vector());
  const Tensor sliced = x.slice(1, 3, 20).slice(0, 2, 9);  // starts at element (2, 3)
  EXPECT_EQ(copy_with_kernel(sliced).to_float_vector(), sliced.contiguous().to_float_vector());
  for (DType dtype : {DType::kI64, DType::kBF16, DType::kI8}) {
    const Tensor typed = x.to(dtype).transpose(0, 1);
    EXPECT_EQ(copy_with_kernel(typed).to_float_vector(), typed.contiguous().to_float_vector()) << dtype_name(dtype);
  }
}

// Copies that the launcher simplifies: heads of 64 (whole 16-byte words per run), views whose runs or addresses
// allow only narrower words, dims of size 1, a plain contiguous copy (one dim), and 1- and 2-byte elements moved
// as 16-byte words.
TEST(TensorCopyKernels, WideWordsAndMergedDimsCopyExactly) {
  const Tensor heads = test_support::random_tensor({2, 9, 3, 64}, 3).permute({0, 2, 1, 3});
  const Tensor cases[] = {heads,
                          test_support::random_tensor({2, 9, 3, 64}, 4).slice(3, 1, 63).permute({0, 2, 1, 3}),
                          test_support::random_tensor({2, 9, 3, 64}, 5).slice(3, 2, 62).permute({0, 2, 1, 3}),
                          test_support::random_tensor({5, 1, 7, 1, 8}, 6).permute({2, 1, 0, 3, 4}),
                          test_support::random_tensor({1000}, 7),
                          test_support::random_tensor({1001}, 8).slice(0, 1, 1001)};
  for (const Tensor& view : cases) {
    EXPECT_EQ(copy_with_kernel(view).to_float_vector(), view.contiguous().to_float_vector()) << view.str();
  }
  for (DType dtype : {DType::kI8, DType::kBF16, DType::kI64}) {
    const Tensor typed = test_support::random_tensor({2, 9, 3, 64}, 9).to(dtype).permute({0, 2, 1, 3});
    EXPECT_EQ(copy_with_kernel(typed).to_float_vector(), typed.contiguous().to_float_vector()) << dtype_name(dtype);
  }
}

// What the launcher makes of the layouts above: the words it moves and the dims left.
TEST(TensorCopyKernels, LayoutSimplification) {
  const auto simplify = [](const Tensor& view, const Tensor& out, int* dims) {
    cuda::StridedCopyLayout layout{};
    layout.dims = static_cast<int>(view.dim());
    for (int d = 0; d < layout.dims; ++d) {
      layout.shape[d] = view.size(d);
      layout.dst_strides[d] = out.strides()[d];
      layout.src_strides[d] = view.strides()[d];
    }
    const size_t word = cuda::simplify_copy_layout(layout, dtype_size(view.dtype()), out.raw_data(), view.raw_data());
    *dims = layout.dims;
    return word;
  };
  int dims = 0;
  const Tensor heads = test_support::random_tensor({2, 9, 3, 64}, 3).permute({0, 2, 1, 3});
  EXPECT_EQ(simplify(heads, Tensor::empty(heads.shape()), &dims), 16u);
  EXPECT_EQ(dims, 4);
  const Tensor flat = test_support::random_tensor({4, 5, 6}, 1);
  EXPECT_EQ(simplify(flat, Tensor::empty(flat.shape()), &dims), 16u);  // 120 floats, one run of 30 words
  EXPECT_EQ(dims, 1);
  const Tensor odd = test_support::random_tensor({1001}, 8).slice(0, 1, 1001);  // 1000 floats from a 4-byte offset
  EXPECT_EQ(simplify(odd, Tensor::empty(odd.shape()), &dims), 4u);
  const Tensor transposed = test_support::random_tensor({9, 33}, 2).transpose(0, 1);
  EXPECT_EQ(simplify(transposed, Tensor::empty(transposed.shape()), &dims), 4u);
  EXPECT_EQ(dims, 2);
}

// The bytes of `t` (contiguous).
std::vector<uint8_t> bytes_of(const Tensor& t) {
  const auto* first = static_cast<const uint8_t*>(t.raw_data());
  return std::vector<uint8_t>(first, first + t.nbytes());
}

TEST(TensorCopyKernels, ConversionsRoundExactlyAsTheCpu) {
  // Normal values, values that are subnormal or overflow in f16, exact ties, and the specials.
  std::vector<float> values = random_values(997, -70000, 70000, 5);
  for (float v : {0.0f, -0.0f, 1e-6f, -3e-7f, 65504.0f, 65520.0f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256,
                  1.0f + 1.0f / 2048, 1e38f, INFINITY, -INFINITY, NAN}) {
    values.push_back(v);
  }
  const int64_t n = static_cast<int64_t>(values.size());
  const Tensor x = Tensor::from_vector(values, {n});
  for (DType narrow : {DType::kBF16, DType::kF16}) {
    const Tensor want = x.to(narrow);  // core/half.h on the CPU
    Tensor got = Tensor::empty({n}, narrow);
    cuda::convert(got.raw_data(), narrow, x.raw_data(), DType::kF32, n);
    EXPECT_EQ(bytes_of(got), bytes_of(want)) << "f32 -> " << dtype_name(narrow);
    Tensor back = Tensor::empty({n}, DType::kF32);
    cuda::convert(back.raw_data(), DType::kF32, want.raw_data(), narrow, n);
    EXPECT_EQ(bytes_of(back), bytes_of(want.to(DType::kF32))) << dtype_name(narrow) << " -> f32";
  }
  const Tensor as_bf16 = x.to(DType::kBF16);
  Tensor got = Tensor::empty({n}, DType::kF16);
  cuda::convert(got.raw_data(), DType::kF16, as_bf16.raw_data(), DType::kBF16, n);
  EXPECT_EQ(bytes_of(got), bytes_of(as_bf16.to(DType::kF16))) << "bf16 -> f16";
  EXPECT_THROW(cuda::convert(got.raw_data(), DType::kI64, x.raw_data(), DType::kF32, n), Error);
}

TEST(TensorCopyKernels, FillWritesEveryElement) {
  std::vector<float> floats(1000, 0.0f);
  const float value = -2.5f;
  cuda::fill(floats.data(), &value, sizeof(float), 999);
  for (int i = 0; i < 999; ++i) ASSERT_EQ(floats[i], value) << i;
  EXPECT_EQ(floats[999], 0.0f);  // one past the count is untouched
  std::vector<int64_t> ids(77, 0);
  const int64_t id = -100;
  cuda::fill(ids.data(), &id, sizeof(int64_t), 77);
  EXPECT_EQ(ids, std::vector<int64_t>(77, -100));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
