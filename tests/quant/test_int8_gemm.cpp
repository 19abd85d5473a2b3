// Tests for quant/int8_gemm.h: every path available on this machine against a plain int64 reference matmul, with
// EXACT equality, on awkward sizes (not multiples of any tile, odd K, K = 1, K = 3072 across several K blocks, more
// rows and channels than one task) and on the extreme values that would saturate a naive vpmaddubsw; the fused
// epilogue, per tensor and per row, against an int64 / double reference (exact where the result is an integer
// that float holds); per-row parameters that are all equal give the per-tensor output bit for bit;
// quantize_activations and quantize_activations_per_row against plain loops (NaN, infinities, -0 and the tail of
// K % 16 included: on a VNNI machine the AVX-512 row loops run, under BERTFORGE_INT8_ISA=avx2 or scalar the portable
// ones).
//
// The AVX-512 VNNI path runs only on a CPU that has it; on the development machine (AMD Zen 3, AVX2) it is
// compiled but reported as skipped.
#include "quant/int8_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "quant/activation_quant.h"

namespace bertforge::quant {
namespace {

struct Problem {
  int64_t M, N, K;
};

// The reference: C[m][n] = sum_k A[m][k] * W[n][k] in int64.
std::vector<int64_t> reference(const std::vector<uint8_t>& A, const std::vector<int8_t>& W, const Problem& p) {
  std::vector<int64_t> C(p.M * p.N, 0);
  for (int64_t m = 0; m < p.M; ++m) {
    for (int64_t n = 0; n < p.N; ++n) {
      int64_t sum = 0;
      for (int64_t k = 0; k < p.K; ++k) sum += int64_t{A[m * p.K + k]} * int64_t{W[n * p.K + k]};
      C[m * p.N + n] = sum;
    }
  }
  return C;
}

std::vector<uint8_t> random_u8(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(d(rng));
  return v;
}
std::vector<int8_t> random_s8(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-127, 127);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(d(rng));
  return v;
}

class Int8GemmPaths : public ::testing::TestWithParam<Int8GemmIsa> {
 protected:
  void SetUp() override {
    if (!int8_gemm_isa_available(GetParam())) {
      GTEST_SKIP() << int8_gemm_isa_name(GetParam()) << " is not available on this CPU (compiled, not executed)";
    }
  }
  // a_bits < 8: the codes of A must be below 2^a_bits (the AVX2 path then takes its 7-bit kernel).
  void expect_exact(const std::vector<uint8_t>& A, const std::vector<int8_t>& W, const Problem& p, int a_bits = 8) {
    SCOPED_TRACE(std::string(int8_gemm_isa_name(GetParam())) + " M " + std::to_string(p.M) + " N " +
                 std::to_string(p.N) + " K " + std::to_string(p.K) + " a_bits " + std::to_string(a_bits));
    const PackedInt8Weight packed = pack_int8_weight(W.data(), p.N, p.K, p.K, GetParam());
    std::vector<int32_t> C(p.M * p.N, -7);
    int8_gemm_s32(p.M, A.data(), p.K, packed, C.data(), p.N, a_bits);
    const std::vector<int64_t> want = reference(A, W, p);
    int64_t misses = 0;
    for (int64_t i = 0; i < p.M * p.N; ++i) {
      if (C[i] != want[i] && misses++ < 5) {
        ADD_FAILURE() << "C[" << i / p.N << "][" << i % p.N << "] = " << C[i] << ", want " << want[i];
      }
    }
    EXPECT_EQ(misses, 0);
  }
};

TEST_P(Int8GemmPaths, EqualsIntegerReferenceOnAwkwardSizes) {
  const Problem problems[] = {{1, 1, 1},    {5, 3, 1},     {7, 13, 3},    {17, 33, 5},   {33, 17, 31},
                              {4, 16, 768}, {13, 50, 769}, {9, 40, 1537}, {3, 5, 3072},  {130, 270, 770},
                              {1, 300, 64}, {260, 7, 100}};
  uint32_t seed = 1;
  for (const Problem& p : problems) {
    expect_exact(random_u8(p.M * p.K, seed), random_s8(p.N * p.K, seed + 100), p);
    ++seed;
  }
}

// Activations of at most 7 bits: the same exact sums through the AVX2 path's 7-bit kernel (and the others').
TEST_P(Int8GemmPaths, SevenBitActivationsEqualIntegerReference) {
  const Problem problems[] = {{1, 1, 1}, {7, 13, 3}, {33, 17, 31}, {13, 50, 769}, {130, 270, 770}, {3, 5, 3072}};
  uint32_t seed = 40;
  for (const Problem& p : problems) {
    std::vector<uint8_t> A = random_u8(p.M * p.K, seed);
    for (uint8_t& a : A) a >>= 1;  // [0, 127]
    expect_exact(A, random_s8(p.N * p.K, seed + 100), p, /*a_bits=*/7);
    ++seed;
  }
  // The extremes: 127 x +-127 in every pair, 2 * 16129 = 32258, just below vpmaddubsw's saturation.
  const Problem p{6, 20, 3072};
  std::vector<uint8_t> A(p.M * p.K, 127);
  std::vector<int8_t> W(p.N * p.K, 127);
  for (int64_t n = 0; n < p.N; n += 2) std::fill(W.begin() + n * p.K, W.begin() + (n + 1) * p.K, int8_t{-127});
  expect_exact(A, W, p, 7);
  // 6-bit codes too.
  for (uint8_t& a : A) a = 63;
  expect_exact(A, W, p, 6);
}

// A code outside the promised width is an error, not a saturated sum.
TEST_P(Int8GemmPaths, ACodeBeyondThePromisedBitsIsRefused) {
  const Problem p{3, 4, 10};
  std::vector<uint8_t> A(p.M * p.K, 5);
  A[17] = 128;
  const std::vector<int8_t> W = random_s8(p.N * p.K, 3);
  const PackedInt8Weight packed = pack_int8_weight(W.data(), p.N, p.K, p.K, GetParam());
  std::vector<int32_t> C(p.M * p.N);
  EXPECT_THROW(int8_gemm_s32(p.M, A.data(), p.K, packed, C.data(), p.N, 7), Error);
  EXPECT_THROW(int8_gemm_s32(p.M, A.data(), p.K, packed, C.data(), p.N, 0), Error);
  Int8Epilogue e;
  const float one = 1.0f;
  e.w_scales = &one;
  e.a_bits = 7;
  std::vector<float> Y(p.M * p.N);
  EXPECT_THROW(int8_gemm_f32(p.M, A.data(), p.K, packed, e, Y.data(), p.N), Error);
}

// All activations 255 and weights +-127 everywhere: pair sums of 64770 would saturate a direct vpmaddubsw; the sum
// over K = 3072 is +-99,486,720, far from int32's limits but exact only without saturation. Then all activations
// 0, which the AVX2 path sees as -128 (negating it would wrap), against negative weights.
TEST_P(Int8GemmPaths, ExtremeValuesDoNotSaturate) {
  const Problem p{6, 20, 3072};
  std::vector<uint8_t> A(p.M * p.K, 255);
  std::vector<int8_t> W(p.N * p.K, 127);
  for (int64_t n = 0; n < p.N; n += 2) std::fill(W.begin() + n * p.K, W.begin() + (n + 1) * p.K, int8_t{-127});
  expect_exact(A, W, p);
  std::fill(A.begin(), A.end(), uint8_t{0});  // a - 128 = -128 everywhere: the AVX2 sign trick's edge
  expect_exact(A, W, p);
  for (int64_t i = 0; i < p.M * p.K; i += 3) A[i] = 255;  // mixed, with alternating signs
  for (int64_t i = 0; i < p.N * p.K; i += 5) W[i] = static_cast<int8_t>(-W[i]);
  expect_exact(A, W, p);
}

TEST_P(Int8GemmPaths, LeadingDimensions) {
  const Problem p{11, 19, 45};
  const int64_t lda = 50, ldw = 47, ldc = 23;
  const std::vector<uint8_t> A = random_u8(p.M * lda, 5);
  const std::vector<int8_t> W = random_s8(p.N * ldw, 6);
  const PackedInt8Weight packed = pack_int8_weight(W.data(), p.N, p.K, ldw, GetParam());
  std::vector<int32_t> C(p.M * ldc, -1);
  int8_gemm_s32(p.M, A.data(), lda, packed, C.data(), ldc);
  for (int64_t m = 0; m < p.M; ++m) {
    for (int64_t n = 0; n < ldc; ++n) {
      int64_t want = -1;  // padding columns untouched
      if (n < p.N) {
        want = 0;
        for (int64_t k = 0; k < p.K; ++k) want += int64_t{A[m * lda + k]} * W[n * ldw + k];
      }
      ASSERT_EQ(C[m * ldc + n], want) << m << "," << n;
    }
  }
}

// y = s_a * s_w[n] * (acc - z_a * rowsum[n]) + bias[n], against double arithmetic.
TEST_P(Int8GemmPaths, EpilogueMatchesDoubleReference) {
  const Problem p{37, 70, 3072};
  const std::vector<uint8_t> A = random_u8(p.M * p.K, 21);
  const std::vector<int8_t> W = random_s8(p.N * p.K, 22);
  std::vector<float> w_scales(p.N), bias(p.N);
  for (int64_t n = 0; n < p.N; ++n) w_scales[n] = 0.001f * (n + 1), bias[n] = 0.5f - 0.01f * n;
  const float a_scale = 0.037f;
  const int32_t a_zero = 131;
  const PackedInt8Weight packed = pack_int8_weight(W.data(), p.N, p.K, p.K, GetParam());
  for (bool per_channel : {true, false}) {
    for (bool with_bias : {true, false}) {
      Int8Epilogue e;
      e.a_scale = a_scale;
      e.a_zero_point = a_zero;
      e.w_scales = w_scales.data();
      e.num_w_scales = per_channel ? p.N : 1;
      e.bias = with_bias ? bias.data() : nullptr;
      std::vector<float> Y(p.M * p.N);
      int8_gemm_f32(p.M, A.data(), p.K, packed, e, Y.data(), p.N);
      for (int64_t m = 0; m < p.M; ++m) {
        for (int64_t n = 0; n < p.N; ++n) {
          double sum = 0, magnitude = 0;
          for (int64_t k = 0; k < p.K; ++k) {
            const double term = double(int{A[m * p.K + k]} - a_zero) * W[n * p.K + k];
            sum += term, magnitude += std::fabs(term);
          }
          const double s = double{a_scale} * w_scales[per_channel ? n : 0];
          const double b = with_bias ? bias[n] : 0.0;
          const double want = s * sum + b;
          ASSERT_NEAR(Y[m * p.N + n], want, 1e-6 * (s * magnitude + std::fabs(b)) + 1e-30)
              << m << "," << n << " per_channel " << per_channel << " bias " << with_bias;
        }
      }
    }
  }
}

// Codes below 2^a_bits for a (M,K) with per-row zero points z (M) in [0, 2^a_bits - 1] and scales s (M): rows cycle
// through z = 0, z = the top code, and a random z; row 0 holds only the top code and row 1 only 0 (with those
// zero points: the largest |sum (a - z) w| there is).
struct PerRowActivations {
  std::vector<uint8_t> codes;
  std::vector<int32_t> zero_points;
  std::vector<float> scales;
};
PerRowActivations per_row_activations(const Problem& p, int a_bits, uint32_t seed) {
  const int top = (1 << a_bits) - 1;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(0, top);
  std::uniform_real_distribution<float> scale(0.001f, 0.1f);
  PerRowActivations a{std::vector<uint8_t>(p.M * p.K), std::vector<int32_t>(p.M), std::vector<float>(p.M)};
  for (int64_t m = 0; m < p.M; ++m) {
    a.zero_points[m] = m % 3 == 0 ? 0 : m % 3 == 1 ? top : code(rng);
    a.scales[m] = scale(rng);
    for (int64_t k = 0; k < p.K; ++k) {
      a.codes[m * p.K + k] = static_cast<uint8_t>(m == 0 ? top : m == 1 ? 0 : code(rng));
    }
  }
  return a;
}

// y[m][n] = s_a[m] s_w[n] (sum_k (a - z_a[m]) w) + b[n] on every path: the integer sum from an int64 reference,
// the scales in double. Awkward sizes: more rows than a task (96), more channels than a task (256), K over every
// path's K block (512 or 768) so partial sums cross blocks; 8-bit and 7-bit codes (AVX2's two kernels).
TEST_P(Int8GemmPaths, PerRowEpilogueMatchesIntegerReference) {
  const Problem problems[] = {{1, 1, 1}, {7, 13, 3}, {37, 70, 1537}, {130, 270, 770}};
  uint32_t seed = 60;
  for (const Problem& p : problems) {
    const std::vector<int8_t> W = random_s8(p.N * p.K, seed + 100);
    const PackedInt8Weight packed = pack_int8_weight(W.data(), p.N, p.K, p.K, GetParam());
    std::vector<float> w_scales(p.N), bias(p.N), ones(p.N, 1.0f);
    std::vector<int64_t> row_sums(p.N, 0);
    for (int64_t n = 0; n < p.N; ++n) {
      w_scales[n] = 0.002f * (n % 17 + 1), bias[n] = 0.25f - 0.01f * n;
      for (int64_t k = 0; k < p.K; ++k) row_sums[n] += W[n * p.K + k];
    }
    for (int a_bits : {8, 7}) {
      const PerRowActivations a = per_row_activations(p, a_bits, seed++);
      const std::vector<int64_t> acc = reference(a.codes, W, p);
      // unit: s_a = s_w = 1 and no bias, so y is the integer sum itself, exact while float holds it.
      for (const char* config : {"per_channel", "per_tensor", "per_channel+bias", "per_tensor+bias", "unit"}) {
        SCOPED_TRACE(std::string(int8_gemm_isa_name(GetParam())) + " M " + std::to_string(p.M) + " N " +
                     std::to_string(p.N) + " K " + std::to_string(p.K) + " a_bits " + std::to_string(a_bits) +
                     " " + config);
        const bool unit = std::string(config) == "unit";
        const bool per_channel = std::string(config).rfind("per_channel", 0) == 0;
        const bool with_bias = std::string(config).find("bias") != std::string::npos;
        const std::vector<float> a_scales = unit ? std::vector<float>(p.M, 1.0f) : a.scales;
        Int8Epilogue e;
        e.a_scales = a_scales.data();
        e.a_zero_points = a.zero_points.data();
        e.a_bits = a_bits;
        e.w_scales = unit ? ones.data() : w_scales.data();
        e.num_w_scales = per_channel ? p.N : 1;
        e.bias = with_bias ? bias.data() : nullptr;
        std::vector<float> Y(p.M * p.N);
        int8_gemm_f32(p.M, a.codes.data(), p.K, packed, e, Y.data(), p.N);
        int64_t misses = 0;
        for (int64_t m = 0; m < p.M; ++m) {
          for (int64_t n = 0; n < p.N; ++n) {
            const int64_t v = acc[m * p.N + n] - int64_t{a.zero_points[m]} * row_sums[n];
            const double s = double{a_scales[m]} * e.w_scales[per_channel ? n : 0];
            const double b = with_bias ? bias[n] : 0.0;
            const double want = s * static_cast<double>(v) + b;
            // s_a s_w, float(v), the product and the bias add round once each: 4 half-ulps of |s v|, 1 of |b|.
            const double allowed = unit && std::llabs(v) <= (int64_t{1} << 24)
                                       ? 0.0
                                       : 2.4e-7 * std::fabs(s * static_cast<double>(v)) + 6e-8 * std::fabs(b);
            if (!(std::fabs(Y[m * p.N + n] - want) <= allowed) && misses++ < 5) {
              ADD_FAILURE() << "Y[" << m << "][" << n << "] = " << Y[m * p.N + n] << ", want " << want
                            << " (z_a " << a.zero_points[m] << ")";
            }
          }
        }
        EXPECT_EQ(misses, 0);
      }
    }
  }
}

// Per-row parameters that all equal the per-tensor ones: the same floats, bit for bit, on every path.
TEST_P(Int8GemmPaths, PerRowWithEqualParametersIsPerTensorBitForBit) {
  const Problem problems[] = {{7, 13, 3}, {37, 70, 1537}, {130, 270, 770}};
  uint32_t seed = 80;
  for (const Problem& p : problems) {
    const std::vector<int8_t> W = random_s8(p.N * p.K, seed + 100);
    const PackedInt8Weight packed = pack_int8_weight(W.data(), p.N, p.K, p.K, GetParam());
    std::vector<float> w_scales(p.N), bias(p.N);
    for (int64_t n = 0; n < p.N; ++n) w_scales[n] = 0.0013f * (n % 11 + 1), bias[n] = 0.3f - 0.007f * n;
    for (int a_bits : {8, 7}) {
      std::vector<uint8_t> A = random_u8(p.M * p.K, seed++);
      for (uint8_t& v : A) v >>= 8 - a_bits;
      for (int32_t zero_point : {0, 93, (1 << a_bits) - 1}) {
        SCOPED_TRACE(std::string(int8_gemm_isa_name(GetParam())) + " K " + std::to_string(p.K) + " a_bits " +
                     std::to_string(a_bits) + " z " + std::to_string(zero_point));
        Int8Epilogue per_tensor;
        per_tensor.a_scale = 0.0371f;
        per_tensor.a_zero_point = zero_point;
        per_tensor.a_bits = a_bits;
        per_tensor.w_scales = w_scales.data();
        per_tensor.num_w_scales = p.N;
        per_tensor.bias = bias.data();
        const std::vector<float> a_scales(p.M, per_tensor.a_scale);
        const std::vector<int32_t> a_zero_points(p.M, zero_point);
        Int8Epilogue per_row = per_tensor;
        per_row.a_scales = a_scales.data();
        per_row.a_zero_points = a_zero_points.data();
        std::vector<float> want(p.M * p.N), got(p.M * p.N);
        int8_gemm_f32(p.M, A.data(), p.K, packed, per_tensor, want.data(), p.N);
        int8_gemm_f32(p.M, A.data(), p.K, packed, per_row, got.data(), p.N);
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
      }
    }
  }
}

TEST_P(Int8GemmPaths, PerRowParametersAreChecked) {
  const Problem p{3, 4, 10};
  const std::vector<uint8_t> A(p.M * p.K, 5);
  const std::vector<int8_t> W = random_s8(p.N * p.K, 3);
  const PackedInt8Weight packed = pack_int8_weight(W.data(), p.N, p.K, p.K, GetParam());
  const float one = 1.0f;
  const std::vector<float> a_scales(p.M, 0.5f);
  std::vector<int32_t> a_zero_points = {0, 255, 256};
  std::vector<float> Y(p.M * p.N);
  Int8Epilogue e;
  e.w_scales = &one;
  e.a_scales = a_scales.data();
  EXPECT_THROW(int8_gemm_f32(p.M, A.data(), p.K, packed, e, Y.data(), p.N), Error);  // zero points missing
  e.a_zero_points = a_zero_points.data();
  EXPECT_THROW(int8_gemm_f32(p.M, A.data(), p.K, packed, e, Y.data(), p.N), Error);  // 256
  a_zero_points[2] = -1;
  EXPECT_THROW(int8_gemm_f32(p.M, A.data(), p.K, packed, e, Y.data(), p.N), Error);
  a_zero_points[2] = 7;
  e.a_zero_point = 1000;  // ignored per row
  EXPECT_NO_THROW(int8_gemm_f32(p.M, A.data(), p.K, packed, e, Y.data(), p.N));
}

INSTANTIATE_TEST_SUITE_P(AllPaths, Int8GemmPaths,
                         ::testing::Values(Int8GemmIsa::kScalar, Int8GemmIsa::kAvx2, Int8GemmIsa::kAvx512Vnni),
                         [](const ::testing::TestParamInfo<Int8GemmIsa>& info) {
                           switch (info.param) {
                             case Int8GemmIsa::kScalar: return std::string("Scalar");
                             case Int8GemmIsa::kAvx2: return std::string("Avx2");
                             case Int8GemmIsa::kAvx512Vnni: return std::string("Avx512Vnni");
                           }
                           return std::string("Unknown");
                         });

TEST(Int8Gemm, BestPathIsAvailableAndReported) {
  const Int8GemmIsa best = int8_gemm_best_isa();
  EXPECT_TRUE(int8_gemm_isa_available(best));
  EXPECT_TRUE(int8_gemm_isa_available(Int8GemmIsa::kScalar));
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) {
    EXPECT_TRUE(int8_gemm_isa_available(Int8GemmIsa::kAvx2));
  }
  EXPECT_EQ(int8_gemm_isa_available(Int8GemmIsa::kAvx512Vnni), __builtin_cpu_supports("avx512vnni") &&
                                                                    __builtin_cpu_supports("avx512bw") &&
                                                                    __builtin_cpu_supports("avx512f"));
#endif
  std::string paths;
  for (Int8GemmIsa isa : int8_gemm_available_isas()) paths += std::string(" ") + int8_gemm_isa_name(isa);
  std::printf("int8 GEMM paths on this CPU:%s; chosen: %s\n", paths.c_str(), int8_gemm_isa_name(best));
}

TEST(Int8Gemm, PackRejectsOutOfContractWeights) {
  std::vector<int8_t> W = {1, -128, 3, 4};
  EXPECT_THROW(pack_int8_weight(W.data(), 1, 4, 4), Error);
  EXPECT_THROW(pack_int8_weight(W.data(), 1, kInt8GemmMaxK + 1, kInt8GemmMaxK + 1), Error);
  W[1] = -127;
  const PackedInt8Weight p = pack_int8_weight(W.data(), 1, 4, 4);
  EXPECT_EQ(p.row_sums, std::vector<int32_t>{-119});
  EXPECT_EQ(p.padded_cols, 4);
}

TEST(Int8Gemm, QuantizeActivationsMatchesPlainLoop) {
  const int64_t M = 7, K = 301, ldx = 305, ldq = 303;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-4.0f, 6.0f);
  std::vector<float> X(M * ldx);
  for (float& x : X) x = u(rng);
  // Ties round to even, and clamping at both ends.
  X[0] = 2.5f * 0.05f, X[1] = 3.5f * 0.05f, X[2] = -1000.0f, X[3] = 1000.0f, X[4] = NAN;
  // Infinities clamp; -0 is 0 (each path's vector loop, its tail of K % 16 and the portable loop alike).
  X[6] = std::numeric_limits<float>::infinity(), X[7] = -std::numeric_limits<float>::infinity(), X[8] = -0.0f;
  X[ldx + K - 1] = NAN, X[2 * ldx + K - 2] = 1e30f;
  const float scale = 0.05f;
  const int32_t zero = 77;
  std::vector<uint8_t> Q(M * ldq, 0xAB);
  quantize_activations(X.data(), M, K, ldx, scale, zero, Q.data(), ldq);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < ldq; ++k) {
      int want = 0xAB;  // beyond K: untouched
      if (k < K) {
        const float x = X[m * ldx + k];
        want = std::isnan(x) ? 0 : static_cast<int>(std::min(std::max(std::nearbyint(x / scale) + zero, 0.0f), 255.0f));
      }
      ASSERT_EQ(Q[m * ldq + k], want) << m << "," << k << " x " << X[m * ldx + k];
    }
  }
  EXPECT_EQ(Q[0], std::nearbyint(2.5f * 0.05f / 0.05f) + 77);  // whatever the float quotient rounds to
  EXPECT_EQ(Q[2], 0);
  EXPECT_EQ(Q[3], 255);
  EXPECT_THROW(quantize_activations(X.data(), 1, 1, 1, 0.0f, 0, Q.data(), 1), Error);
  EXPECT_THROW(quantize_activations(X.data(), 1, 1, 1, 1.0f, 256, Q.data(), 1), Error);
  // 6 bits: clamped to 63; a zero point above 63 is refused.
  quantize_activations(X.data(), M, K, ldx, scale, 20, Q.data(), ldq, 6);
  EXPECT_EQ(Q[3], 63);
  EXPECT_EQ(Q[2], 0);
  EXPECT_EQ(Q[5], std::min(std::max(std::nearbyint(X[5] / scale) + 20.0f, 0.0f), 63.0f));
  EXPECT_THROW(quantize_activations(X.data(), 1, 1, 1, 1.0f, 64, Q.data(), 1, 6), Error);
  EXPECT_THROW(quantize_activations(X.data(), 1, 1, 1, 1.0f, 0, Q.data(), 1, 9), Error);
}

// The brute-force reference of quantize_activations_per_row for one row: its range over the non-NaN values,
// widened to 0, through from_range; the codes as quantize_activations computes them.
void expect_row_quantized(const float* x, int64_t K, int bits, const uint8_t* q, float scale, int32_t zero_point,
                          const std::string& what) {
  float lo = 0.0f, hi = 0.0f;
  for (int64_t k = 0; k < K; ++k) {
    if (std::isnan(x[k])) continue;
    lo = std::min(lo, x[k]);
    hi = std::max(hi, x[k]);
  }
  const ActivationQuantParams want = ActivationQuantParams::from_range({lo, hi}, bits);
  ASSERT_EQ(scale, want.scale) << what;
  ASSERT_EQ(zero_point, want.zero_point) << what;
  ASSERT_GE(zero_point, 0) << what;
  ASSERT_LE(zero_point, want.qmax()) << what;
  const float q_max = static_cast<float>(want.qmax());
  for (int64_t k = 0; k < K; ++k) {
    const float v = std::nearbyint(x[k] / want.scale) + static_cast<float>(want.zero_point);
    const int code = std::isnan(x[k]) ? 0 : static_cast<int>(std::min(std::max(v, 0.0f), q_max));
    ASSERT_EQ(q[k], code) << what << " k " << k << " x " << x[k];
  }
}

TEST(Int8Gemm, QuantizeActivationsPerRowMatchesBruteForce) {
  // Enough rows and columns for several threads; K odd; padded leading dims.
  const int64_t M = 160, K = 301, ldx = 305, ldq = 303;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> X(M * ldx);
  for (int64_t m = 0; m < M; ++m) {
    const float magnitude = std::pow(10.0f, static_cast<float>(m % 9) - 4.0f);  // 1e-4 .. 1e4
    for (int64_t k = 0; k < ldx; ++k) X[m * ldx + k] = magnitude * u(rng) + (m % 4 == 3 ? magnitude : 0.0f);
  }
  const auto row = [&](int64_t m) { return X.begin() + m * ldx; };
  std::fill(row(0), row(0) + K, 0.0f);                       // all zero: s = 1, z = 0
  std::fill(row(1), row(1) + K, 2.5f);                       // constant > 0: [0, 2.5]
  std::fill(row(2), row(2) + K, -0.75f);                     // constant < 0: [-0.75, 0]
  for (int64_t k = 0; k < K; ++k) row(3)[k] = -1.0f - k;     // only negative values
  for (int64_t k = 0; k < K; ++k) row(4)[k] = 0.5f + k;      // only positive values
  for (int64_t k = 0; k < K; ++k) row(5)[k] = (k % 2 ? 3e38f : -1e38f) * u(rng);  // near float's largest
  for (int64_t k = 0; k < K; ++k) row(6)[k] = 1e-42f * static_cast<float>(k % 7 - 3);  // denormals
  row(7)[10] = NAN, row(7)[200] = NAN;                       // NaNs: outside the range, code 0
  std::fill(row(8), row(8) + K, NAN);                        // only NaN: the all-zero range
  row(9)[0] = 1e30f;                                         // one outlier token value
  std::fill(row(10), row(10) + K, -0.0f);                    // negative zeros: the all-zero range
  row(11)[K - 1] = NAN, row(11)[K - 2] = -50.0f;              // in the tail of K % 16
  for (int bits : {8, 7, 4, 2}) {
    std::vector<uint8_t> Q(M * ldq, 0xAB);
    std::vector<float> scales(M, -1.0f);
    std::vector<int32_t> zero_points(M, -1);
    quantize_activations_per_row(X.data(), M, K, ldx, bits, Q.data(), ldq, scales.data(), zero_points.data());
    for (int64_t m = 0; m < M; ++m) {
      expect_row_quantized(&X[m * ldx], K, bits, &Q[m * ldq], scales[m], zero_points[m],
                           std::to_string(bits) + " bits, row " + std::to_string(m));
      for (int64_t k = K; k < ldq; ++k) ASSERT_EQ(Q[m * ldq + k], 0xAB) << "beyond K: untouched";
    }
    EXPECT_EQ(scales[0], 1.0f);
    EXPECT_EQ(zero_points[0], 0);
    EXPECT_EQ(zero_points[1], 0);                    // [0, 2.5]
    EXPECT_EQ(Q[1 * ldq], (1 << bits) - 1);          // 2.5 is the top code
    EXPECT_EQ(zero_points[2], (1 << bits) - 1);      // [-0.75, 0]
    EXPECT_EQ(Q[2 * ldq], 0);
    EXPECT_EQ(Q[7 * ldq + 10], 0);
  }
  // A per-tensor call with a row's parameters gives that row's codes.
  std::vector<uint8_t> Q(M * ldq), Q1(K);
  std::vector<float> scales(M);
  std::vector<int32_t> zero_points(M);
  quantize_activations_per_row(X.data(), M, K, ldx, 8, Q.data(), ldq, scales.data(), zero_points.data());
  for (int64_t m : {3, 10, 77}) {
    quantize_activations(&X[m * ldx], 1, K, ldx, scales[m], zero_points[m], Q1.data(), K);
    EXPECT_EQ(std::memcmp(Q1.data(), &Q[m * ldq], K), 0) << m;
  }
}

TEST(Int8Gemm, QuantizeActivationsPerRowRefusesInfinityAndBadBits) {
  const int64_t M = 4, K = 9;
  std::vector<float> X(M * K, 0.5f);
  std::vector<uint8_t> Q(M * K);
  std::vector<float> scales(M);
  std::vector<int32_t> zero_points(M);
  for (int bits : {1, 9}) {
    EXPECT_THROW(quantize_activations_per_row(X.data(), M, K, K, bits, Q.data(), K, scales.data(),
                                              zero_points.data()), Error);
  }
  for (float inf : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    X[2 * K + 4] = inf;
    try {
      quantize_activations_per_row(X.data(), M, K, K, 8, Q.data(), K, scales.data(), zero_points.data());
      ADD_FAILURE() << "an infinity was accepted";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("row 2 "), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("infinity"), std::string::npos) << error.what();
    }
  }
}

}  // namespace
}  // namespace bertforge::quant
