// cuda/int8_linear.cu on the CUDA simulator against the CPU's integer Linear (quant/int8_gemm.h): the same uint8
// codes from quantize_u8 as from quantize_activations; the same codes and the same per-row scales and zero points
// (bit for bit) from quantize_u8_per_row as from quantize_activations_per_row; and int8_linear's outputs equal to
// int8_gemm_f32's, with per-tensor and with per-row activation parameters (exact int32 sums; the float epilogue to
// half an ulp of its product, where one compiler fuses the multiply-add), on sizes that are not multiples of the
// 64 x 64 tile or of the 64-byte K step, with per-tensor and per-channel weight scales, with and without a bias,
// and on the extreme codes and zero points.
#include "tests/cuda_sim/cuda_sim.h"
// The kernel source under test comes after the simulator.
#include "cuda/int8_linear.cu"

#include <cmath>
#include <random>
#include <string>
#include <vector>

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

// Rows with the special ranges of per-row quantization, and two row lengths: below one block's 256 threads, and
// above it (threads loop over the row).
TEST(Int8LinearKernels, QuantizePerRowMatchesTheCpuCodesAndParameters) {
  for (const int64_t K : {int64_t{5}, int64_t{301}}) {
    const int64_t M = 12;
    std::vector<float> x = random_values(M * K, -3, 5, 2);
    const auto row = [&](int64_t m) { return x.begin() + m * K; };
    std::fill(row(0), row(1), 0.0f);                                             // all zero
    std::fill(row(1), row(2), 2.5f);                                             // constant > 0
    std::fill(row(2), row(3), -0.75f);                                           // constant < 0
    for (int64_t k = 0; k < K; ++k) row(3)[k] = -1.0f - static_cast<float>(k);  // only negative
    for (int64_t k = 0; k < K; ++k) row(4)[k] = (k % 2 ? 3e38f : -1e38f) * ((k % 3 + 1) / 3.0f);  // huge
    for (int64_t k = 0; k < K; ++k) row(5)[k] = 1e-42f * static_cast<float>(k % 7 - 3);         // denormal
    row(6)[1] = NAN;                                                             // left out of the range
    std::fill(row(7), row(8), NAN);
    row(8)[K - 1] = 1e30f;
    for (int64_t k = 0; k < K; ++k) row(9)[k] = 0.05f * static_cast<float>(k) - 0.025f;  // ties at some scale
    for (int bits : {8, 7, 4, 2}) {
      SCOPED_TRACE("K " + std::to_string(K) + ", " + std::to_string(bits) + " bits");
      std::vector<uint8_t> got(M * K, 0xAB), want(M * K);
      std::vector<float> got_scales(M), want_scales(M);
      std::vector<int32_t> got_zero_points(M), want_zero_points(M);
      cuda::quantize_u8_per_row(got.data(), got_scales.data(), got_zero_points.data(), x.data(), M, K, bits);
      quant::quantize_activations_per_row(x.data(), M, K, K, bits, want.data(), K, want_scales.data(),
                                          want_zero_points.data());
      EXPECT_EQ(got, want);
      EXPECT_EQ(got_scales, want_scales);
      EXPECT_EQ(got_zero_points, want_zero_points);
    }
  }
  // A row holding an infinity (an error on the CPU) gets scale NaN, zero point 0 and codes 0 on the GPU, so its
  // outputs are NaN; the other rows are unaffected.
  std::vector<float> x = random_values(2 * 40, -1, 1, 3);
  x[50] = -INFINITY;
  std::vector<uint8_t> q(80);
  std::vector<float> scales(2);
  std::vector<int32_t> zero_points(2);
  cuda::quantize_u8_per_row(q.data(), scales.data(), zero_points.data(), x.data(), 2, 40, 8);
  EXPECT_TRUE(std::isnan(scales[1]));
  EXPECT_EQ(zero_points[1], 0);
  EXPECT_EQ(std::vector<uint8_t>(q.begin() + 40, q.end()), std::vector<uint8_t>(40, 0));
  EXPECT_TRUE(std::isfinite(scales[0]));
  EXPECT_THROW(cuda::quantize_u8_per_row(q.data(), scales.data(), zero_points.data(), x.data(), 2, 40, 1), Error);
}

struct Problem {
  int64_t M, N, K;
};

// Per tensor (per_row false) or per row: the rows' zero points cycle through 0, 255 and random ones.
void expect_linear_matches_the_cpu(bool per_row) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(0, 255), weight(-127, 127);
  std::uniform_real_distribution<float> row_scale(0.001f, 0.1f);
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
    std::vector<float> a_scales(p.M);
    std::vector<int32_t> a_zero_points(p.M);
    for (int64_t m = 0; m < p.M; ++m) {
      a_scales[m] = row_scale(rng);
      a_zero_points[m] = m % 3 == 0 ? 0 : m % 3 == 1 ? 255 : code(rng);
    }
    for (bool per_channel : {true, false}) {
      for (bool with_bias : {true, false}) {
        Int8Epilogue e;
        e.a_scale = 0.037f;
        e.a_zero_point = 131;
        e.a_scales = per_row ? a_scales.data() : nullptr;
        e.a_zero_points = per_row ? a_zero_points.data() : nullptr;
        e.w_scales = scales.data();
        e.num_w_scales = per_channel ? p.N : 1;
        e.bias = with_bias ? bias.data() : nullptr;
        std::vector<float> got(p.M * p.N, NAN), want(p.M * p.N);
        cuda::int8_linear(got.data(), a.data(), w.data(), row_sums.data(), scales.data(), e.num_w_scales, e.bias,
                          p.M, p.N, p.K, e.a_scale, e.a_zero_point, e.a_scales, e.a_zero_points);
        quant::int8_gemm_f32(p.M, a.data(), p.K, packed, e, want.data(), p.N);
        // Where one side fuses s * sum + b into one rounding and the other rounds the product first, they differ
        // by up to half an ulp of the product: within 2.5e-7 of |s * sum| + |b|.
        int misses = 0;
        for (int64_t i = 0; i < p.M * p.N; ++i) {
          const double b = with_bias ? bias[i % p.N] : 0.0;
          const double allowed = 2.5e-7 * (std::fabs(want[i] - b) + std::fabs(b));
          if (!(std::fabs(double{got[i]} - want[i]) <= allowed) && ++misses <= 5) {
            ADD_FAILURE() << "M " << p.M << " N " << p.N << " K " << p.K << (per_channel ? " per channel" : "")
                          << (with_bias ? " bias" : "") << (per_row ? " per row" : "") << " [" << i << "]: CUDA "
                          << got[i] << ", CPU " << want[i];
          }
        }
        EXPECT_EQ(misses, 0);
      }
    }
  }
  EXPECT_NO_THROW(cuda::int8_linear(nullptr, nullptr, nullptr, nullptr, nullptr, 1, nullptr, 0, 5, 7, 1.0f, 0,
                                    nullptr, nullptr));
}

TEST(Int8LinearKernels, MatchesTheCpuGemmAndEpilogue) { expect_linear_matches_the_cpu(/*per_row=*/false); }

TEST(Int8LinearKernels, PerRowMatchesTheCpuGemmAndEpilogue) { expect_linear_matches_the_cpu(/*per_row=*/true); }

}  // namespace
}  // namespace bertforge::cuda_sim_test
