// CUDA device memory: round trip of a tensor through a GPU. Skips without a GPU.
#include <gtest/gtest.h>

#include "core/tensor.h"
#include "cuda/device.h"

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

TEST(CudaDevice, WithoutAGpuAllocationFailsWithAClearError) {
  cuda::register_cuda_backend();
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW(Tensor::empty({4}, DType::kF32, Device::cuda(0)), Error);
}

}  // namespace
}  // namespace bertforge
