// tests/ops/test_gemm.cpp — bertforge::cpu::gemm and gemm_strided_batched against a double-precision triple loop.
//
// Covers all four transpose combinations, alpha/beta variants (beta = 0 must ignore NaNs already in C), sizes that
// are not multiples of the 6x16 tile or of the KC/MC/NC cache blocks, leading dimensions wider than the matrix,
// strided batches, and different OpenMP thread counts; and gemm_strided_batched_16 (bf16 and f16 inputs, widened
// to FP32 by the packing) against the same reference on the widened values.
#include "ops/cpu/gemm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"

namespace bertforge::cpu {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> random_vector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// One GEMM problem: op(A) (M,K), op(B) (K,N), C (M,N), each stored with `pad` extra columns beyond its width.
struct GemmCase {
  int64_t M, N, K;
  bool trans_a, trans_b;
  float alpha, beta;
  int64_t pad = 0;
};

std::string Name(const GemmCase& c) {
  auto num = [](float x) {
    std::string s = std::to_string(static_cast<int>(std::lround(x * 100)));
    return s[0] == '-' ? "m" + s.substr(1) : s;
  };
  return std::to_string(c.M) + "x" + std::to_string(c.N) + "x" + std::to_string(c.K) + (c.trans_a ? "_T" : "_N") +
         (c.trans_b ? "T" : "N") + "_a" + num(c.alpha) + "_b" + num(c.beta) + "_pad" + std::to_string(c.pad);
}

// Storage of op(X) (rows, cols): X itself is (rows, cols), or (cols, rows) when transposed; leading dim = width + pad.
struct Stored {
  int64_t height, ld;
  Stored(int64_t rows, int64_t cols, bool trans, int64_t pad)
      : height(trans ? cols : rows), ld((trans ? rows : cols) + pad) {}
  int64_t size() const { return height * ld; }
};

// Checks C_out (M,N) against alpha * op(A) @ op(B) + beta * C_in in double precision. The error bound is relative
// to the magnitude of the terms summed: |error| <= 2 (K + 2) eps * (|alpha| sum_k |a||b| + |beta c|).
void ExpectGemmNear(const GemmCase& c, const float* A, int64_t lda, const float* B, int64_t ldb, const float* C_in,
                    const float* C_out, int64_t ldc) {
  int failures = 0;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double sum = 0.0, magnitude = 0.0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = c.trans_a ? A[k * lda + i] : A[i * lda + k];
        const double b = c.trans_b ? B[j * ldb + k] : B[k * ldb + j];
        sum += a * b;
        magnitude += std::fabs(a * b);
      }
      double expected = c.alpha * sum;
      magnitude *= std::fabs(c.alpha);
      if (c.beta != 0.0f) {
        expected += static_cast<double>(c.beta) * C_in[i * ldc + j];
        magnitude += std::fabs(static_cast<double>(c.beta) * C_in[i * ldc + j]);
      }
      const double tolerance = 2.0 * (c.K + 2) * FLT_EPSILON * magnitude + 1e-30;
      const float got = C_out[i * ldc + j];
      if (!(std::fabs(got - expected) <= tolerance) && ++failures <= 5) {  // !(<=) also catches NaN
        ADD_FAILURE() << Name(c) << ": C(" << i << "," << j << ") = " << got << ", expected " << expected
                      << " (tolerance " << tolerance << ")";
      }
    }
  }
  EXPECT_EQ(failures, 0) << Name(c);
  // The padding columns of C are outside the matrix and must not be touched.
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = c.N; j < ldc; ++j) {
      ASSERT_EQ(std::memcmp(&C_out[i * ldc + j], &C_in[i * ldc + j], sizeof(float)), 0)
          << Name(c) << ": padding of C written at (" << i << "," << j << ")";
    }
  }
}

void RunGemmCase(const GemmCase& c) {
  const Stored a(c.M, c.K, c.trans_a, c.pad), b(c.K, c.N, c.trans_b, c.pad), cs(c.M, c.N, false, c.pad);
  const std::vector<float> A = random_vector(a.size(), 1), B = random_vector(b.size(), 2);
  // beta == 0: C starts full of NaN, which must not leak into the result.
  const std::vector<float> C_in = c.beta == 0.0f ? std::vector<float>(cs.size(), kNaN) : random_vector(cs.size(), 3);
  std::vector<float> C = C_in;
  gemm(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), a.ld, B.data(), b.ld, c.beta, C.data(), cs.ld);
  ExpectGemmNear(c, A.data(), a.ld, B.data(), b.ld, C_in.data(), C.data(), cs.ld);
}

class GemmTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmTest, MatchesDoubleReference) { RunGemmCase(GetParam()); }

std::vector<GemmCase> AllCases() {
  struct Size { int64_t M, N, K; };
  const Size sizes[] = {
      {1, 1, 1},       // smallest possible
      {7, 13, 5},      // smaller than one 6x16 tile in N, one tile + 1 row in M
      {6, 16, 8},      // exactly one tile
      {97, 65, 131},   // ragged in every dimension
      {12, 32, 257},   // K = KC + 1: two K blocks, the second of length 1 (beta applied once only)
      {300, 50, 40},   // several MC blocks, split across threads
      {2, 200, 64},    // fewer row tiles than threads: columns are split instead
      {5, 4100, 3},    // N > NC = 4080: two column blocks
  };
  struct Scale { float alpha, beta; };
  const Scale scales[] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {-1.5f, 0.25f}};
  std::vector<GemmCase> cases;
  for (const Size& s : sizes) {
    for (int t = 0; t < 4; ++t) {
      for (const Scale& sc : scales) {
        for (int64_t pad : {0, 3}) cases.push_back({s.M, s.N, s.K, (t & 2) != 0, (t & 1) != 0, sc.alpha, sc.beta, pad});
      }
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, GemmTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<GemmCase>& info) { return Name(info.param); });

TEST(Gemm, BetaOneAccumulatesTwice) {
  // Two calls with beta = 1 on a zeroed C must give 2 * A @ B.
  const int64_t M = 33, N = 40, K = 70;
  const std::vector<float> A = random_vector(M * K, 4), B = random_vector(K * N, 5);
  std::vector<float> C(M * N, 0.0f), zero(M * N, 0.0f);
  gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 1.0f, C.data(), N);
  gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 1.0f, C.data(), N);
  ExpectGemmNear({M, N, K, false, false, 2.0f, 0.0f}, A.data(), K, B.data(), N, zero.data(), C.data(), N);
}

TEST(Gemm, ZeroKScalesC) {
  // K = 0: op(A) @ op(B) is an empty sum, so C = beta * C; with beta = 0 NaNs are overwritten by zeros.
  std::vector<float> C = {1.0f, -2.0f, 3.0f, 4.0f};
  gemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0.5f, -1.0f, 1.5f, 2.0f}));
  std::vector<float> D(4, kNaN);
  gemm(true, true, 2, 2, 0, 1.0f, nullptr, 2, nullptr, 1, 0.0f, D.data(), 2);
  EXPECT_EQ(D, std::vector<float>(4, 0.0f));
}

TEST(Gemm, CorrectForAnyThreadCount) {
  // Threads split C by rows when M > N, by columns when M < N (see gemm_own); exercise both, with 1 to 3 threads.
  const GemmCase by_rows{200, 180, 300, false, true, 1.0f, 0.0f, 1};
  const GemmCase by_cols{50, 301, 270, true, false, 0.5f, 1.0f, 2};
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    SCOPED_TRACE("threads = " + std::to_string(threads));
    RunGemmCase(by_rows);
    RunGemmCase(by_cols);
  }
  omp_set_num_threads(saved);
}

// Strided batched: `batch` products laid out at fixed strides (with gaps between them), all checked one by one.
void RunBatchedCase(const GemmCase& c, int64_t batch) {
  const Stored a(c.M, c.K, c.trans_a, c.pad), b(c.K, c.N, c.trans_b, c.pad), cs(c.M, c.N, false, c.pad);
  const int64_t stride_a = a.size() + 5, stride_b = b.size() + 7, stride_c = cs.size() + 11;
  const std::vector<float> A = random_vector(stride_a * batch, 6), B = random_vector(stride_b * batch, 7);
  const std::vector<float> C_in =
      c.beta == 0.0f ? std::vector<float>(stride_c * batch, kNaN) : random_vector(stride_c * batch, 8);
  std::vector<float> C = C_in;
  gemm_strided_batched(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), a.ld, stride_a, B.data(), b.ld,
                       stride_b, c.beta, C.data(), cs.ld, stride_c, batch);
  for (int64_t i = 0; i < batch; ++i) {
    SCOPED_TRACE("batch item " + std::to_string(i));
    ExpectGemmNear(c, A.data() + i * stride_a, a.ld, B.data() + i * stride_b, b.ld, C_in.data() + i * stride_c,
                   C.data() + i * stride_c, cs.ld);
    // The gaps between C matrices are not part of any product and must be left alone.
    for (int64_t g = cs.size(); g < stride_c; ++g) {
      ASSERT_EQ(std::memcmp(&C[i * stride_c + g], &C_in[i * stride_c + g], sizeof(float)), 0) << "gap written";
    }
  }
}

TEST(GemmStridedBatched, AllTransposesManyItems) {
  for (int t = 0; t < 4; ++t) {
    RunBatchedCase({33, 47, 29, (t & 2) != 0, (t & 1) != 0, 1.0f, 0.0f, 2}, 7);
    RunBatchedCase({20, 16, 64, (t & 2) != 0, (t & 1) != 0, 0.125f, 1.0f, 0}, 9);
  }
}

TEST(GemmStridedBatched, FewLargeItemsUseThreadsInside) {
  RunBatchedCase({150, 70, 300, false, true, 1.0f, 0.0f, 0}, 1);
  RunBatchedCase({64, 128, 128, true, false, -1.0f, 0.5f, 1}, 2);
}

TEST(GemmStridedBatched, AttentionShapes) {
  // scores (B*H, T, T) = Q (T, d) @ K^T, and context (T, d) = probs (T, T) @ V, with T = 40, d = 24, 6 heads.
  RunBatchedCase({40, 40, 24, false, true, 1.0f / std::sqrt(24.0f), 0.0f, 0}, 6);
  RunBatchedCase({40, 24, 40, false, false, 1.0f, 0.0f, 0}, 6);
}

// gemm_strided_batched_16 with inputs of type T: every element of A and B is a 16-bit value, and the result must
// be the FP32 GEMM of their exact FP32 widening (within the FP32 summation bound; each product is exact in FP32).
template <typename T>
void RunGemm16Case(DType type, const GemmCase& c, int64_t batch) {
  const Stored a(c.M, c.K, c.trans_a, c.pad), b(c.K, c.N, c.trans_b, c.pad), cs(c.M, c.N, false, c.pad);
  const int64_t stride_a = a.size() + 3, stride_b = b.size() + 1, stride_c = cs.size() + 2;
  auto rounded = [](size_t n, uint32_t seed, std::vector<T>* stored) {
    std::vector<float> widened = random_vector(n, seed);
    for (float& x : widened) {
      stored->push_back(from_float<T>(x * 3.0f));
      x = to_float(stored->back());
    }
    return widened;
  };
  std::vector<T> A16, B16;
  const std::vector<float> A = rounded(stride_a * batch, 9, &A16), B = rounded(stride_b * batch, 10, &B16);
  const std::vector<float> C_in =
      c.beta == 0.0f ? std::vector<float>(stride_c * batch, kNaN) : random_vector(stride_c * batch, 11);
  std::vector<float> C = C_in;
  gemm_strided_batched_16(type, c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, A16.data(), a.ld, stride_a, B16.data(),
                          b.ld, stride_b, c.beta, C.data(), cs.ld, stride_c, batch);
  for (int64_t i = 0; i < batch; ++i) {
    SCOPED_TRACE("batch item " + std::to_string(i));
    ExpectGemmNear(c, A.data() + i * stride_a, a.ld, B.data() + i * stride_b, b.ld, C_in.data() + i * stride_c,
                   C.data() + i * stride_c, cs.ld);
  }
}

TEST(Gemm16, Bf16AndF16InputsAreWidenedExactly) {
  for (int t = 0; t < 4; ++t) {
    const bool ta = (t & 2) != 0, tb = (t & 1) != 0;
    const GemmCase cases[] = {{97, 65, 131, ta, tb, 1.0f, 0.0f, 3},     // ragged
                              {12, 32, 257, ta, tb, -1.5f, 0.25f, 0},  // two K blocks
                              {5, 4100, 3, ta, tb, 1.0f, 1.0f, 1}};    // two column blocks
    for (const GemmCase& c : cases) {
      SCOPED_TRACE(Name(c));
      RunGemm16Case<bf16>(DType::kBF16, c, 1);
      RunGemm16Case<f16>(DType::kF16, c, 1);
    }
  }
}

TEST(Gemm16, StridedBatchesOnAnyThreadCount) {
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    SCOPED_TRACE("threads = " + std::to_string(threads));
    RunGemm16Case<bf16>(DType::kBF16, {40, 24, 40, false, true, 0.5f, 0.0f, 0}, 7);  // many items: one per thread
    RunGemm16Case<f16>(DType::kF16, {150, 70, 300, true, false, 1.0f, 0.0f, 1}, 1);  // one item, threads inside
  }
  omp_set_num_threads(saved);
}

TEST(Gemm16, WideningIsExactNotRounded) {
  // 1 + 2^-7 is a bf16 value; (1 + 2^-7)^2 = 1 + 2^-6 + 2^-14 needs 15 bits, exact in FP32 but not in bf16.
  const bf16 a = FloatToBf16(1.0f + 0x1p-7f);
  ASSERT_EQ(Bf16ToFloat(a), 1.0f + 0x1p-7f);
  float c = 0.0f;
  gemm_strided_batched_16(DType::kBF16, false, false, 1, 1, 1, 1.0f, &a, 1, 0, &a, 1, 0, 0.0f, &c, 1, 0, 1);
  EXPECT_EQ(c, 1.0f + 0x1p-6f + 0x1p-14f);
}

}  // namespace
}  // namespace bertforge::cpu
