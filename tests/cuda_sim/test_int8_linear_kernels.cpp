// cuda/int8_linear.cuh on the CUDA simulator against the CPU's integer Linear (quant/int8_gemm.h): the same uint8
// codes from quantize_u8 as from quantize_activations, and int8_linear's outputs equal to int8_gemm_f32's (exact
// int32 sums; the float epilogue to half an ulp of its product, where one compiler fuses the multiply-add), on
// sizes that are not multiples of the 64 x 64 tile or of the 64-byte K step, with per-tensor and per-channel
// scales, with and without a bias, and on the extreme codes.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/int8_linear.cuh"

#include <cmath>
#include <random>

#include "quant/int8_gemm.h"
#include "tests/cuda_sim/kernel_test_support.h"

namespace bertforge::cuda_sim_test {
namespace {

using quant::Int8Epilogue;
using quant::Int8GemmIsa;

TEST(Int8LinearKernels, QuantizeMatchesTheCpuCodes) {
  std::vector<float> x = random_values(3001, -3, 5, 1);
  x.insert(x.end(), {NAN, INFINITY, -INFINITY, 0.0f, 0.025f, 0.075f});  // ties at scale 0.05
  const int64_t n = static_cast<int64_t>(x.size());
  for (const auto& [bits, zero_point] : {std::pair<int, int>{8, 60}, {7, 31}, {4, 2}}) {
    const float q_max = static_cast<float>((1 << bits) - 1);
    std::vector<uint8_t> got(n), want(n);
    cuda::quantize_u8(got.data(), x.data(), n, 0.05f, static_cast<float>(zero_point), q_max);
    quant::quantize_activations(x.data(), 1, n, n, 0.05f, zero_point, want.data(), n, bits);
    EXPECT_EQ(got, want) << bits << " bits";
  }
}

struct Problem {
  int64_t M, N, K;
};

TEST(Int8LinearKernels, MatchesTheCpuGemmAndEpilogue) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(0, 255), weight(-127, 127);
  const Problem problems[] = {{1, 1, 1}, {37, 70, 203}, {65, 129, 64}, {5, 3, 3072}};
  for (const Problem& p : problems) {
    std::vector<uint8_t> a(p.M * p.K);
    std::vector<int8_t> w(p.N * p.K);
    for (uint8_t& v : a) v = static_cast<uint8_t>(code(rng));
    for (int8_t& v : w) v = static_cast<int8_t>(weight(rng));
    if (p.K == 3072) {  // the extremes: 255 x +-127 everywhere
      std::fill(a.begin(), a.end(), uint8_t{255});
      for (int64_t i = 0; i < p.N * p.K; ++i) w[i] = (i / p.K) % 2 == 0 ? 127 : -127;
    }
    std::vector<int32_t> row_sums(p.N, 0);
    for (int64_t n = 0; n < p.N; ++n) {
      for (int64_t k = 0; k < p.K; ++k) row_sums[n] += w[n * p.K + k];
    }
    const quant::PackedInt8Weight packed = quant::pack_int8_weight(w.data(), p.N, p.K, p.K, Int8GemmIsa::kScalar);
    std::vector<float> scales(p.N), bias(p.N);
    for (int64_t n = 0; n < p.N; ++n) scales[n] = 0.001f * static_cast<float>(n + 1), bias[n] = 0.5f - 0.01f * n;
    for (bool per_channel : {true, false}) {
      for (bool with_bias : {true, false}) {
        Int8Epilogue e;
        e.a_scale = 0.037f;
        e.a_zero_point = 131;
        e.w_scales = scales.data();
        e.num_w_scales = per_channel ? p.N : 1;
        e.bias = with_bias ? bias.data() : nullptr;
        std::vector<float> got(p.M * p.N, NAN), want(p.M * p.N);
        cuda::int8_linear(got.data(), a.data(), w.data(), row_sums.data(), scales.data(), e.num_w_scales, e.bias,
                          p.M, p.N, p.K, e.a_scale, e.a_zero_point);
        quant::int8_gemm_f32(p.M, a.data(), p.K, packed, e, want.data(), p.N);
        // Where one side fuses s * sum + b into one rounding and the other rounds the product first, they differ
        // by up to half an ulp of the product: within 2.5e-7 of |s * sum| + |b|.
        int misses = 0;
        for (int64_t i = 0; i < p.M * p.N; ++i) {
          const double b = with_bias ? bias[i % p.N] : 0.0;
          const double allowed = 2.5e-7 * (std::fabs(want[i] - b) + std::fabs(b));
          if (!(std::fabs(double{got[i]} - want[i]) <= allowed) && ++misses <= 5) {
            ADD_FAILURE() << "M " << p.M << " N " << p.N << " K " << p.K << (per_channel ? " per channel" : "")
                          << (with_bias ? " bias" : "") << " [" << i << "]: CUDA " << got[i] << ", CPU " << want[i];
          }
        }
        EXPECT_EQ(misses, 0);
      }
    }
  }
  EXPECT_NO_THROW(cuda::int8_linear(nullptr, nullptr, nullptr, nullptr, nullptr, 1, nullptr, 0, 5, 7, 1.0f, 0));
}

}  // namespace
}  // namespace bertforge::cuda_sim_test
