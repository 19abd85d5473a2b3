// A check of the kernel registry (ops/kernels.h) in a program with a CUDA backend, the real one (tests/cuda) or
// the simulated one (tests/cuda_sim): every CPU kernel has a CUDA twin of the same type, so that an op runs on
// either device, and the kernels of quantized inference exist on the GPU only (on the CPU,
// quant/int8_gemm.h's prepacked kernels do that work).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "ops/kernels.h"

namespace bertforge::test_support {

inline void expect_cuda_twins_of_cpu_kernels() {
  std::map<std::string, const std::type_info*> cuda_kernels;
  for (const RegisteredKernel& k : registered_kernels(DeviceType::kCUDA)) cuda_kernels[k.name] = k.type;
  for (const RegisteredKernel& cpu_kernel : registered_kernels(DeviceType::kCPU)) {
    const auto twin = cuda_kernels.find(cpu_kernel.name);
    if (twin == cuda_kernels.end()) {
      ADD_FAILURE() << cpu_kernel.name << " has no CUDA kernel";
      continue;
    }
    EXPECT_EQ(type_name(*twin->second), type_name(*cpu_kernel.type)) << cpu_kernel.name;
    cuda_kernels.erase(twin);
  }
  std::vector<std::string> gpu_only;
  for (const auto& [name, type] : cuda_kernels) gpu_only.push_back(name);
  EXPECT_EQ(gpu_only, (std::vector<std::string>{"int8_linear", "quantize_u8", "quantize_u8_per_row"}));
}

}  // namespace bertforge::test_support
