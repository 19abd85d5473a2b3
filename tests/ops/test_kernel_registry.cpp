// The kernel registry (ops/kernels.h): a look-up returns the kernel its file registered, and every way of getting
// it wrong (a missing kernel, another type, a name registered twice, a device built without kernels) fails with
// the kernel's name instead of calling the wrong function.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "ops/activation.h"
#include "ops/kernels.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

// Two test-only kernels of the same name on the CPU.
void twice_a(float* out, int64_t n) { std::fill(out, out + n, 1.0f); }
void twice_b(float* out, int64_t n) { std::fill(out, out + n, 2.0f); }
[[maybe_unused]] const bool twice_registered =
    register_kernel(DeviceType::kCPU, "test_registered_twice", reinterpret_cast<AnyKernel>(&twice_a),
                    typeid(twice_a)) &&
    register_kernel(DeviceType::kCPU, "test_registered_twice", reinterpret_cast<AnyKernel>(&twice_b),
                    typeid(twice_b));

using GeluKernel = void(float* out, const float* x, int64_t n);

// The registered CPU gelu_forward is the one the gelu op calls: same outputs, bit for bit.
TEST(KernelRegistry, FindsTheKernelTheOpCalls) {
  const std::vector<float> x = test_support::random_values(1000, -6.0f, 6.0f, 1);
  std::vector<float> out(x.size());
  kernel<GeluKernel>(Device::cpu(), "gelu_forward")(out.data(), x.data(), static_cast<int64_t>(x.size()));
  const Tensor y = gelu(Tensor::from_vector(x, {static_cast<int64_t>(x.size())}));
  EXPECT_EQ(out, y.to_float_vector());
}

void expect_refused(const std::function<void()>& lookup, const std::vector<std::string>& words) {
  try {
    lookup();
    ADD_FAILURE() << "the look-up succeeded";
  } catch (const Error& e) {
    for (const std::string& word : words) EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
  }
}

TEST(KernelRegistry, RefusesAMissingKernel) {
  expect_refused([] { kernel<GeluKernel>(Device::cpu(), "no_such_kernel"); },
                 {"no_such_kernel", "is not implemented for cpu"});
}

TEST(KernelRegistry, RefusesAnotherType) {
  using WrongGelu = void(float* out, const float* x, int32_t n);
  expect_refused([] { kernel<WrongGelu>(Device::cpu(), "gelu_forward"); },
                 {"gelu_forward", "has type void (float*, float const*, long)",
                  "called as void (float*, float const*, int)"});
}

TEST(KernelRegistry, RefusesANameRegisteredTwice) {
  using TwiceKernel = void(float* out, int64_t n);
  expect_refused([] { kernel<TwiceKernel>(Device::cpu(), "test_registered_twice"); },
                 {"test_registered_twice", "registered twice"});
}

// This test links no CUDA backend (tests/cuda links bertforge_cuda), so the CUDA registry is empty.
TEST(KernelRegistry, NamesADeviceBuiltWithoutKernels) {
  expect_refused([] { kernel<GeluKernel>(Device::cuda(0), "gelu_forward"); },
                 {"no kernels for cuda:0", "built without CUDA"});
}

TEST(KernelRegistry, ListsTheRegisteredKernels) {
  std::vector<std::string> names;
  for (const RegisteredKernel& k : registered_kernels(DeviceType::kCPU)) names.push_back(k.name);
  for (const char* name : {"gelu_forward", "gelu_backward", "tanh_forward", "sigmoid_backward"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  EXPECT_TRUE(registered_kernels(DeviceType::kCUDA).empty());
}

}  // namespace
}  // namespace bertforge
