// cuda/tensor_copy.cuh on the CUDA simulator: strided copies of permuted and sliced views
// against Tensor::copy_ on the CPU (exact: elements are moved, not computed), and fills.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/tensor_copy.cuh"

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
