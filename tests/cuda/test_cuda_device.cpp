// CUDA device memory: round trip of a tensor through a GPU. Skips without a GPU.
#include <gtest/gtest.h>

#include "core/tensor.h"
#include "cuda/device.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace bertforge {
namespace {

TEST(CudaDevice, TensorRoundTrip) {
  cuda::register_cuda_backend();
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  Tensor host = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor gpu = host.to(Device::cuda(0));
  EXPECT_EQ(gpu.device(), Device::cuda(0));
  Tensor copy = Tensor::empty({2, 3}, DType::kF32, Device::cuda(0));
  copy.copy_(gpu);
  EXPECT_EQ(copy.to(Device::cpu()).to_float_vector(), host.to_float_vector());
}

TEST(CudaKernels, ElementwiseMatchesCpu) {
  cuda::register_cuda_backend();
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  // 1000 x 300: not a multiple of the block size.
  std::vector<float> values(300000), bias_values(300);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 97) * 0.25f - 10.0f;
  for (size_t i = 0; i < bias_values.size(); ++i) bias_values[i] = static_cast<float>(i) * 0.5f;
  Tensor x = Tensor::from_vector(values, {1000, 300}), bias = Tensor::from_vector(bias_values, {300});
  Tensor xg = x.to(Device::cuda(0)), bg = bias.to(Device::cuda(0));
  EXPECT_EQ(mul(xg, xg).to(Device::cpu()).to_float_vector(), mul(x, x).to_float_vector());
  EXPECT_EQ(scale(xg, 3.0f).to(Device::cpu()).to_float_vector(), scale(x, 3.0f).to_float_vector());
  EXPECT_EQ(add_bias(xg, bg).to(Device::cpu()).to_float_vector(), add_bias(x, bias).to_float_vector());
  std::vector<float> gpu_sums = sum(xg, {0}).to(Device::cpu()).to_float_vector();
  std::vector<float> cpu_sums = sum(x, {0}).to_float_vector();
  for (size_t c = 0; c < cpu_sums.size(); ++c) EXPECT_NEAR(gpu_sums[c], cpu_sums[c], 1e-3f * 1000);
}

TEST(CudaDevice, WithoutAGpuAllocationFailsWithAClearError) {
  cuda::register_cuda_backend();
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW(Tensor::empty({4}, DType::kF32, Device::cuda(0)), Error);
}

}  // namespace
}  // namespace bertforge
