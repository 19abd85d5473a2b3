// cuda/adamw.cu on the CUDA simulator against the CPU kernel: several steps (bias corrections
// far from and close to 1) with and without weight decay, on 1, 1000 and 9001 elements.
// The kernel follows the CPU's order of operations with the same float scalars; the results
// may still differ by float rounding where one compiler fuses a multiply-add and the other
// does not (nvcc does by default), hence a tolerance of a few ulp.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/adamw.cu"

#include "tests/cuda_sim/kernel_test_support.h"

// The CPU references, declared with the types of their CUDA twins: a type that differs from the CPU kernel's
// definition fails to link.
namespace bertforge::cpu {
decltype(cuda::adamw_update) adamw_update;
decltype(cuda::adamw_update_many) adamw_update_many;
}  // namespace bertforge::cpu

namespace bertforge::cuda_sim_test {
namespace {

TEST(AdamWKernels, StepsMatchTheCpu) {
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{9001}}) {
    for (float weight_decay : {0.0f, 0.01f}) {
      std::vector<float> param = random_values(n, -1, 1, 21), m = random_values(n, -0.1f, 0.1f, 22);
      std::vector<float> v = random_values(n, 0, 0.01f, 23);
      std::vector<float> want_param = param, want_m = m, want_v = v;
      for (int64_t step : {int64_t{1}, int64_t{2}, int64_t{1000}}) {
        const std::string what = "n " + std::to_string(n) + ", weight decay " + std::to_string(weight_decay) +
                                 ", step " + std::to_string(step);
        const std::vector<float> grad = random_values(n, -2, 2, static_cast<uint32_t>(24 + step));
        cuda::adamw_update(param.data(), grad.data(), m.data(), v.data(), n, 1e-3f, 0.9f, 0.999f, 1e-6f, weight_decay,
                           step);
        cpu::adamw_update(want_param.data(), grad.data(), want_m.data(), want_v.data(), n, 1e-3f, 0.9f, 0.999f, 1e-6f,
                           weight_decay, step);
        // A fused multiply-add rounds once instead of twice, and each device carries its own m
        // and v from step to step, so differences build up over the 3 steps. Measured on an H100
        // (nvcc fuses, g++ -mfma may fuse differently): m within 1.2e-7 absolute (4 ulp of its
        // largest values, ~0.3; relative error is large only where beta1 * m and (1 - beta1) * g
        // cancel), v within 3.6e-7 relative, param within 1.2e-7 absolute (1 ulp of |param| ~ 1).
        expect_close(m, want_m, 1e-6, 2e-7, "m, " + what);
        expect_close(v, want_v, 1e-6, 1e-10, "v, " + what);
        expect_close(param, want_param, 3e-7, 2e-7, "param, " + what);
      }
    }
  }
}

TEST(AdamWKernels, EmptyInputsLaunchNothing) {
  // A grid of zero blocks is an invalid launch, on a GPU and in the simulator.
  EXPECT_NO_THROW(cuda::adamw_update(nullptr, nullptr, nullptr, nullptr, 0, 1e-3f, 0.9f, 0.999f, 1e-6f, 0.0f, 1));
}

// The multi-tensor update: 35 tensors (two launches), one of two chunks, some empty, weight decay on every other,
// a clipping factor; against the CPU's list update, to the single-tensor test's tolerances.
TEST(AdamWKernels, ManyTensorsMatchTheCpu) {
  constexpr int kTensors = 35;
  std::vector<std::vector<float>> param(kTensors), grad(kTensors), m(kTensors), v(kTensors);
  std::vector<int64_t> sizes;
  std::vector<float> weight_decays;
  for (int t = 0; t < kTensors; ++t) {
    const int64_t n = t == 20 ? kMultiTensorChunk + 300 : t % 9 == 0 ? 0 : 13 * t + 1;
    param[t] = random_values(n, -1, 1, 100 + t);
    grad[t] = random_values(n, -2, 2, 200 + t);
    m[t] = random_values(n, -0.1f, 0.1f, 300 + t);
    v[t] = random_values(n, 0, 0.01f, 400 + t);
    sizes.push_back(n);
    weight_decays.push_back(t % 2 == 0 ? 0.01f : 0.0f);
  }
  auto want_param = param, want_m = m, want_v = v;
  const auto pointers = [](std::vector<std::vector<float>>& lists) {
    std::vector<float*> p;
    for (auto& l : lists) p.push_back(l.data());
    return p;
  };
  std::vector<const float*> grads;
  for (auto& g : grad) grads.push_back(g.data());
  for (int64_t step : {int64_t{1}, int64_t{2}}) {
    cuda::adamw_update_many(pointers(param).data(), grads.data(), pointers(m).data(), pointers(v).data(),
                            sizes.data(), weight_decays.data(), kTensors, 0.6f, 1e-3f, 0.9f, 0.999f, 1e-6f, step);
    cpu::adamw_update_many(pointers(want_param).data(), grads.data(), pointers(want_m).data(),
                            pointers(want_v).data(), sizes.data(), weight_decays.data(), kTensors, 0.6f, 1e-3f, 0.9f,
                            0.999f, 1e-6f, step);
  }
  for (int t = 0; t < kTensors; ++t) {
    const std::string what = "tensor " + std::to_string(t);
    expect_close(m[t], want_m[t], 1e-6, 2e-7, "m, " + what);
    expect_close(v[t], want_v[t], 1e-6, 1e-10, "v, " + what);
    expect_close(param[t], want_param[t], 3e-7, 2e-7, "param, " + what);
  }
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
