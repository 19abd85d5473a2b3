// The whole `--device cuda` path without a GPU: a CUDA backend whose memory is host memory
// and whose kernels are the launchers of every cuda/<family>.cu, run on the CUDA simulator
// (GEMMs, which are cuBLAS on a GPU, use the CPU GEMM here). BERT training steps on
// Device::cuda(0) must then match the same steps on the CPU: this checks that the model,
// the optimizer and the tensor plumbing (moves, strided copies, fills, host reads) work on a
// non-CPU device, and that no op lacks a CUDA kernel (a missing one throws). It also checks that
// every CUDA kernel has the type of its CPU twin.
#include "tests/cuda_sim/cuda_sim.h"
// Every kernel source, compiled for the simulator, after it.
#include "cuda/activation.cu"
#include "cuda/adamw.cu"
#include "cuda/cross_entropy.cu"
#include "cuda/dropout.cu"
#include "cuda/elementwise.cu"
#include "cuda/embedding.cu"
#include "cuda/fake_quantize.cu"
#include "cuda/int8_linear.cu"
#include "cuda/layernorm.cu"
#include "cuda/softmax.cu"
#include "cuda/tensor_copy.cuh"

#include <cstdlib>
#include <cstring>

#include "core/device.h"
#include "autograd/grad_mode.h"
#include "ops/cpu/gemm.h"
#include "ops/kernels.h"
#include "quant/quantized_linear.h"
#include "quant/weight_quant.h"
#include "tests/cuda_sim/kernel_test_support.h"
#include "tests/support/device_training_parity.h"
#include "tests/support/kernel_twins.h"

// cuBLAS has no simulator: the simulated GPU multiplies with the CPU GEMM.
namespace bertforge::cuda {
[[maybe_unused]] const bool simulated_gemm_registered =
    register_kernel(DeviceType::kCUDA, "gemm_strided_batched", reinterpret_cast<AnyKernel>(&cpu::gemm_strided_batched),
                    typeid(cpu::gemm_strided_batched)) &&
    register_kernel(DeviceType::kCUDA, "gemm_strided_batched_16",
                    reinterpret_cast<AnyKernel>(&cpu::gemm_strided_batched_16), typeid(cpu::gemm_strided_batched_16));
}  // namespace bertforge::cuda

namespace bertforge::cuda_sim_test {
namespace {

// Host memory posing as device memory; strided copies, fills and conversions run the CUDA kernels.
class SimulatedCudaDevice final : public DeviceInterface {
 public:
  // aligned_alloc needs a multiple of the alignment; one spare line keeps zero-byte tensors valid.
  void* allocate(size_t nbytes, int) override { return std::aligned_alloc(64, (nbytes + 63) / 64 * 64 + 64); }
  void deallocate(void* ptr, int) override { std::free(ptr); }
  void copy_to_host(void* dst, const void* src, size_t n, int) override { std::memcpy(dst, src, n); }
  void copy_from_host(void* dst, const void* src, size_t n, int) override { std::memcpy(dst, src, n); }
  void copy_within(void* dst, const void* src, size_t n, int) override { std::memcpy(dst, src, n); }
  void copy_strided(void* dst, const int64_t* dst_strides, const void* src, const int64_t* src_strides,
                    const int64_t* shape, int dims, size_t element_size, int) override {
    cuda::copy_strided(dst, dst_strides, src, src_strides, shape, dims, element_size);
  }
  void fill(void* dst, const void* value, size_t element_size, int64_t count, int) override {
    cuda::fill(dst, value, element_size, count);
  }
  void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t count, int) override {
    cuda::convert(dst, dst_dtype, src, src_dtype, count);
  }
};

void register_simulated_cuda_backend() {
  static SimulatedCudaDevice device;
  register_device_interface(DeviceType::kCUDA, &device);
}

// The simulated backend's kernels are the kernel sources included above, with the simulated GEMM.
TEST(SimulatedGpuKernels, EveryCpuKernelHasACudaTwinOfTheSameType) { test_support::expect_cuda_twins_of_cpu_kernels(); }

class SimulatedGpuTraining : public ::testing::TestWithParam<AttentionVariant> {
 protected:
  void SetUp() override { register_simulated_cuda_backend(); }
};

TEST_P(SimulatedGpuTraining, StepsMatchTheCpu) {
  test_support::expect_training_matches_cpu(GetParam(), Device::cuda(0));
}

INSTANTIATE_TEST_SUITE_P(AttentionVariants, SimulatedGpuTraining, test_support::kParityAttentionVariants,
                         test_support::parity_test_name);

// Mixed precision on the device path: the 16-bit copies are made there by the conversion kernel.
TEST(SimulatedGpuMixedPrecision, StepsMatchTheCpu) {
  register_simulated_cuda_backend();
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    test_support::expect_training_matches_cpu(AttentionVariant::kClippedSoftmax, Device::cuda(0), dtype);
  }
}

// Quantized inference takes the same device path: an int8 Linear given a tensor on the simulated GPU copies its
// weight there and runs quantize_u8 (per token: quantize_u8_per_row) and int8_linear; its outputs equal the CPU's int8 GEMM's (exact int32 sums,
// the float epilogue to a few ulps of the largest output).
TEST(SimulatedGpuInference, QuantizedLinearMatchesTheCpu) {
  register_simulated_cuda_backend();
  const Tensor w = test_support::random_tensor({37, 70}, 1), bias = test_support::random_tensor({37}, 2);
  const Tensor x = test_support::random_tensor({3, 5, 70}, -2.0f, 3.0f, 3);
  autograd::NoGradGuard no_grad;
  const quant::QuantizedWeight weight = quant::quantize_weight(w, {8, true, quant::Granularity::kPerChannel, 16});
  for (const bool per_token : {false, true}) {
    for (int activation_bits : {8, 6}) {
      const ActivationQuantParams input = ActivationQuantParams::from_range({-2.0f, 3.0f}, activation_bits);
      const absl::StatusOr<quant::QuantizedLinear> linear =
          per_token ? quant::QuantizedLinear::create_per_token(weight, bias, activation_bits)
                    : quant::QuantizedLinear::create(weight, bias, input);
      ASSERT_TRUE(linear.ok()) << linear.status();
      const std::vector<float> want = linear->forward(x).to_float_vector();
      const Tensor on_gpu = linear->forward(x.to(Device::cuda(0)));
      EXPECT_EQ(on_gpu.device(), Device::cuda(0));
      EXPECT_EQ(on_gpu.shape(), (Shape{3, 5, 37}));
      double largest = 0;
      for (float v : want) largest = std::max(largest, std::fabs(double{v}));
      expect_close(on_gpu.to(Device::cpu()).to_float_vector(), want, 0, 1e-6 * largest,
                   (per_token ? "per token A" : "per tensor A") + std::to_string(activation_bits));
    }
  }
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
