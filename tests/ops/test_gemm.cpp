// tests/ops/test_gemm.cpp — the CPU GEMM on every path (ops/cpu/gemm.h: scalar, avx2, avx512, avx512-bf16) and
// operand type (f32; bf16 and f16 through the 16-bit GEMM) against a double-precision triple loop.
//
// Covers all four transpose combinations, alpha/beta variants (beta = 0 must ignore NaNs already in C), sizes that
// are not multiples of any path's tile (6x16, 12x32) or of the KC/MC/NC cache blocks (odd K for the bf16 pairs
// included), leading dimensions wider than the matrix, strided batches, and different OpenMP thread counts. A path
// the CPU lacks is skipped with the reason. Then the path choice itself: the default paths, BERTFORGE_GEMM_ISA.
//
// Tolerance, for every path and type: |C - reference| <= 2 (K + 2) FLT_EPSILON (|alpha| sum_k |a b| + |beta c|),
// the reference computed in double from the operands as the GEMM sees them (16-bit operands: their exact values).
// (All paths also agree bit for bit: GemmPaths.EveryPathGivesTheSameBits.)
// Why it holds: every product is exact or rounded once in FP32 (a product of two 16-bit values is exact; the bf16
// path's vdpbf16ps adds the two products of a k pair into the FP32 sum one after the other), and a sum of K terms
// in FP32 is off by at most K u sum |a b| (u = FLT_EPSILON / 2), plus alpha and beta's roundings; the bound allows
// four times that. (vdpbf16ps also flushes subnormals: none occur in these operands.)
#include "ops/cpu/gemm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
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

// Checks C_out (M,N) against alpha * op(A) @ op(B) + beta * C_in in double precision, within the bound at the top.
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

// A path and the operand type it runs on.
struct Path {
  GemmIsa isa;
  DType type;
};

std::string PathName(const Path& p) {
  std::string isa = gemm_isa_name(p.isa);
  for (char& ch : isa) ch = ch == '-' ? '_' : ch;
  return isa + "_" + dtype_name(p.type);
}

void PrintTo(const Path& p, std::ostream* os) { *os << PathName(p); }

// Every path with every type it takes.
std::vector<Path> AllPaths() {
  std::vector<Path> paths;
  for (DType type : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (GemmIsa isa : {GemmIsa::kScalar, GemmIsa::kAvx2, GemmIsa::kAvx512, GemmIsa::kAvx512Bf16}) {
      if (gemm_isa_accepts(isa, type)) paths.push_back({isa, type});
    }
  }
  return paths;
}

// Operands in float, plus their 16-bit storage for the 16-bit types: values are rounded to the type first, so the
// float copy holds exactly what the GEMM multiplies.
struct Operand {
  std::vector<float> values;
  std::vector<uint16_t> bits;  // bf16 / f16 storage; empty for f32
  const void* data() const { return bits.empty() ? static_cast<const void*>(values.data()) : bits.data(); }
};

Operand MakeOperand(DType type, size_t n, uint32_t seed) {
  Operand op{random_vector(n, seed), {}};
  if (type == DType::kF32) return op;
  for (float& x : op.values) {
    x *= 3.0f;  // beyond [-1, 1], so the exponents differ too
    const uint16_t bits = type == DType::kBF16 ? FloatToBf16(x).bits : FloatToF16(x).bits;
    op.bits.push_back(bits);
    x = type == DType::kBF16 ? Bf16ToFloat(bf16{bits}) : F16ToFloat(f16{bits});
  }
  return op;
}

// `batch` products laid out at fixed strides (with gaps between them) on `path`, all checked one by one.
void RunCase(const Path& path, const GemmCase& c, int64_t batch = 1) {
  const Stored a(c.M, c.K, c.trans_a, c.pad), b(c.K, c.N, c.trans_b, c.pad), cs(c.M, c.N, false, c.pad);
  const int64_t stride_a = a.size() + 5, stride_b = b.size() + 7, stride_c = cs.size() + 11;
  const Operand A = MakeOperand(path.type, stride_a * batch, 1), B = MakeOperand(path.type, stride_b * batch, 2);
  // beta == 0: C starts full of NaN, which must not leak into the result.
  const std::vector<float> C_in =
      c.beta == 0.0f ? std::vector<float>(stride_c * batch, kNaN) : random_vector(stride_c * batch, 3);
  std::vector<float> C = C_in;
  gemm_strided_batched_on(path.isa, path.type, c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), a.ld,
                          stride_a, B.data(), b.ld, stride_b, c.beta, C.data(), cs.ld, stride_c, batch);
  for (int64_t i = 0; i < batch; ++i) {
    SCOPED_TRACE(PathName(path) + " batch item " + std::to_string(i));
    ExpectGemmNear(c, A.values.data() + i * stride_a, a.ld, B.values.data() + i * stride_b, b.ld,
                   C_in.data() + i * stride_c, C.data() + i * stride_c, cs.ld);
    // The gaps between C matrices are not part of any product and must be left alone.
    for (int64_t g = cs.size(); g < stride_c; ++g) {
      ASSERT_EQ(std::memcmp(&C[i * stride_c + g], &C_in[i * stride_c + g], sizeof(float)), 0) << "gap written";
    }
  }
}

struct Size {
  int64_t M, N, K;
};

std::string SizeName(const Size& s) {
  return std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K);
}

void PrintTo(const Size& s, std::ostream* os) { *os << SizeName(s); }

const Size kSizes[] = {
    {1, 1, 1},       // smallest possible
    {7, 13, 5},      // smaller than one tile in N; M one 6-row tile + 1
    {6, 16, 8},      // exactly one AVX2 tile
    {12, 32, 16},    // exactly one AVX-512 tile
    {97, 65, 131},   // ragged in every dimension, odd K
    {12, 32, 257},   // K = 256 + 1: two AVX2 K blocks, the second of length 1 (beta applied once only)
    {15, 33, 385},   // K = 384 + 1: two AVX-512 K blocks, the second one k (for bf16 a single half pair)
    {25, 70, 769},   // K = 2 * 384 + 1: three AVX-512 K blocks
    {300, 50, 40},   // several MC blocks (AVX2), split across threads
    {2, 200, 64},    // fewer row tiles than threads: columns are split instead
    {5, 4100, 3},    // N > NC (4080, 4096): two column blocks
};

// Each test: one path, one size, all 4 transposes x 3 (alpha, beta) x 2 paddings.
class GemmPathTest : public ::testing::TestWithParam<std::tuple<Path, Size>> {
 protected:
  void SetUp() override {
    const GemmIsa isa = std::get<0>(GetParam()).isa;
    if (!gemm_isa_available(isa)) {
      GTEST_SKIP() << gemm_isa_name(isa) << " is not available on this CPU (compiled, not executed)";
    }
  }
};

TEST_P(GemmPathTest, MatchesDoubleReference) {
  const auto& [path, s] = GetParam();
  struct Scale { float alpha, beta; };
  for (int t = 0; t < 4; ++t) {
    for (const Scale& sc : {Scale{1.0f, 0.0f}, Scale{1.0f, 1.0f}, Scale{-1.5f, 0.25f}}) {
      for (int64_t pad : {0, 3}) RunCase(path, {s.M, s.N, s.K, (t & 2) != 0, (t & 1) != 0, sc.alpha, sc.beta, pad});
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllPaths, GemmPathTest, ::testing::Combine(::testing::ValuesIn(AllPaths()),
                                                                    ::testing::ValuesIn(kSizes)),
                         [](const ::testing::TestParamInfo<std::tuple<Path, Size>>& info) {
                           return PathName(std::get<0>(info.param)) + "_" + SizeName(std::get<1>(info.param));
                         });

// Whole-path tests: threads, batches.
class GemmPathBatchTest : public ::testing::TestWithParam<Path> {
 protected:
  void SetUp() override {
    if (!gemm_isa_available(GetParam().isa)) {
      GTEST_SKIP() << gemm_isa_name(GetParam().isa) << " is not available on this CPU (compiled, not executed)";
    }
  }
};

TEST_P(GemmPathBatchTest, CorrectForAnyThreadCount) {
  // Threads split C by rows when M > N, by columns when M < N (see gemm_own); exercise both, with 1 to 3 threads.
  // 600 rows: two MC blocks (MC 288) per thread even with 2 threads.
  const GemmCase by_rows{600, 90, 300, false, true, 1.0f, 0.0f, 1};
  const GemmCase by_cols{50, 301, 271, true, false, 0.5f, 1.0f, 2};
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    SCOPED_TRACE("threads = " + std::to_string(threads));
    RunCase(GetParam(), by_rows);
    RunCase(GetParam(), by_cols);
  }
  omp_set_num_threads(saved);
}

TEST_P(GemmPathBatchTest, StridedBatches) {
  for (int t = 0; t < 4; ++t) {
    SCOPED_TRACE("transposes " + std::to_string(t));
    RunCase(GetParam(), {33, 47, 29, (t & 2) != 0, (t & 1) != 0, 1.0f, 0.0f, 2}, 7);   // many items: one per thread
    RunCase(GetParam(), {20, 16, 64, (t & 2) != 0, (t & 1) != 0, 0.125f, 1.0f, 0}, 9);
  }
  RunCase(GetParam(), {150, 70, 300, false, true, 1.0f, 0.0f, 0}, 1);  // few large items: threads inside each
  RunCase(GetParam(), {64, 128, 127, true, false, -1.0f, 0.5f, 1}, 2);
}

TEST_P(GemmPathBatchTest, AttentionShapes) {
  // scores (B*H, T, T) = Q (T, d) @ K^T, and context (T, d) = probs (T, T) @ V, with T = 40, d = 24, 6 heads.
  RunCase(GetParam(), {40, 40, 24, false, true, 1.0f / std::sqrt(24.0f), 0.0f, 0}, 6);
  RunCase(GetParam(), {40, 24, 40, false, false, 1.0f, 0.0f, 0}, 6);
}

INSTANTIATE_TEST_SUITE_P(AllPaths, GemmPathBatchTest, ::testing::ValuesIn(AllPaths()),
                         [](const ::testing::TestParamInfo<Path>& info) { return PathName(info.param); });

// ---- The default entry points (gemm, gemm_strided_batched, gemm_strided_batched_16) -------------------------------

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

TEST(Gemm, DefaultEntryPointsMatchTheirPath) {
  // gemm / gemm_strided_batched / gemm_strided_batched_16 run gemm_isa_for(type): bit for bit the same result.
  const GemmCase c{45, 70, 99, false, true, 1.0f, 0.0f, 0};
  const int64_t M = c.M, N = c.N, K = c.K, batch = 3;
  for (DType type : {DType::kF32, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(type));
    const Operand A = MakeOperand(type, M * K * batch, 6), B = MakeOperand(type, N * K * batch, 7);
    std::vector<float> want(M * N * batch), got(M * N * batch);
    gemm_strided_batched_on(gemm_isa_for(type), type, false, true, M, N, K, 1.0f, A.data(), K, M * K, B.data(), K,
                            N * K, 0.0f, want.data(), N, M * N, batch);
    if (type == DType::kF32) {
      if (std::string(gemm_backend_name()) == "openblas") continue;  // FP32 goes to OpenBLAS, not to a path
      gemm_strided_batched(false, true, M, N, K, 1.0f, A.values.data(), K, M * K, B.values.data(), K, N * K, 0.0f,
                           got.data(), N, M * N, batch);
      EXPECT_EQ(got, want);
      std::vector<float> single(M * N);
      gemm(false, true, M, N, K, 1.0f, A.values.data(), K, B.values.data(), K, 0.0f, single.data(), N);
      EXPECT_EQ(single, std::vector<float>(want.begin(), want.begin() + M * N));
    } else {
      gemm_strided_batched_16(type, false, true, M, N, K, 1.0f, A.data(), K, M * K, B.data(), K, N * K, 0.0f,
                              got.data(), N, M * N, batch);
      EXPECT_EQ(got, want);
    }
  }
}

TEST(GemmPaths, EveryPathGivesTheSameBits) {
  // All paths sum each element's products in k order with one rounding per product and split K alike
  // (gemm_kernels.h), so they agree bit for bit, and the bf16 GEMM equals the FP32 GEMM of the widened operands:
  // ragged tiles, several K blocks, odd K, alpha / beta, both transposes. (Subnormals aside: none here.)
  const GemmCase cases[] = {{97, 70, 517, false, true, 1.0f, 0.0f, 1}, {45, 131, 300, true, false, -1.5f, 0.25f, 0},
                            {130, 33, 257, true, true, 1.0f, 1.0f, 2}};
  for (const GemmCase& c : cases) {
    SCOPED_TRACE(Name(c));
    const Stored a(c.M, c.K, c.trans_a, c.pad), b(c.K, c.N, c.trans_b, c.pad), cs(c.M, c.N, false, c.pad);
    const std::vector<float> C_in = random_vector(cs.size(), 3);
    for (DType type : {DType::kBF16, DType::kF32, DType::kF16}) {
      const Operand A = MakeOperand(type, a.size(), 1), B = MakeOperand(type, b.size(), 2);
      // The FP32 GEMM of the operands' exact values on the scalar path: what every path must give.
      std::vector<float> want = C_in;
      gemm_strided_batched_on(GemmIsa::kScalar, DType::kF32, c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha,
                              A.values.data(), a.ld, 0, B.values.data(), b.ld, 0, c.beta, want.data(), cs.ld, 0, 1);
      for (GemmIsa isa : gemm_available_isas()) {
        if (!gemm_isa_accepts(isa, type)) continue;
        std::vector<float> got = C_in;
        gemm_strided_batched_on(isa, type, c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), a.ld, 0,
                                B.data(), b.ld, 0, c.beta, got.data(), cs.ld, 0, 1);
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
            << gemm_isa_name(isa) << " on " << dtype_name(type) << " differs from scalar FP32";
      }
    }
  }
}

TEST(Gemm16, WideningIsExactNotRounded) {
  // 1 + 2^-7 is a bf16 value; (1 + 2^-7)^2 = 1 + 2^-6 + 2^-14 needs 15 bits, exact in FP32 but not in bf16. On every
  // path (vdpbf16ps included) the product reaches the FP32 sum unrounded.
  const bf16 a = FloatToBf16(1.0f + 0x1p-7f);
  ASSERT_EQ(Bf16ToFloat(a), 1.0f + 0x1p-7f);
  for (GemmIsa isa : gemm_available_isas()) {
    float c = 0.0f;
    gemm_strided_batched_on(isa, DType::kBF16, false, false, 1, 1, 1, 1.0f, &a, 1, 0, &a, 1, 0, 0.0f, &c, 1, 0, 1);
    EXPECT_EQ(c, 1.0f + 0x1p-6f + 0x1p-14f) << gemm_isa_name(isa);
  }
}

// ---- Path choice ---------------------------------------------------------------------------------------------------

TEST(GemmPaths, AvailabilityFollowsTheCpu) {
  EXPECT_TRUE(gemm_isa_available(GemmIsa::kScalar));
#if defined(__x86_64__)
  EXPECT_EQ(gemm_isa_available(GemmIsa::kAvx2), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
  EXPECT_EQ(gemm_isa_available(GemmIsa::kAvx512), static_cast<bool>(__builtin_cpu_supports("avx512f")));
  EXPECT_EQ(gemm_isa_available(GemmIsa::kAvx512Bf16),
            __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512f"));
#endif
  EXPECT_FALSE(gemm_isa_accepts(GemmIsa::kAvx512Bf16, DType::kF32));
  EXPECT_FALSE(gemm_isa_accepts(GemmIsa::kAvx512Bf16, DType::kF16));
  EXPECT_TRUE(gemm_isa_accepts(GemmIsa::kAvx512Bf16, DType::kBF16));
  EXPECT_FALSE(gemm_isa_accepts(GemmIsa::kAvx2, DType::kI8));
  std::printf("GEMM paths on this CPU:");
  for (GemmIsa isa : gemm_available_isas()) std::printf(" %s", gemm_isa_name(isa));
  std::printf("; chosen: %s\n", gemm_paths_summary().c_str());
}

TEST(GemmPaths, DefaultIsTheFastestAvailable) {
  if (const char* forced = std::getenv("BERTFORGE_GEMM_ISA"); forced != nullptr && *forced != '\0') {
    GTEST_SKIP() << "BERTFORGE_GEMM_ISA=" << forced << " overrides the defaults";
  }
  for (DType type : {DType::kF32, DType::kBF16, DType::kF16}) {
    const GemmIsa isa = gemm_isa_for(type);
    EXPECT_TRUE(gemm_isa_available(isa) && gemm_isa_accepts(isa, type)) << dtype_name(type);
    if (gemm_isa_available(GemmIsa::kAvx2)) {
      EXPECT_NE(isa, GemmIsa::kScalar) << dtype_name(type);
    }
  }
  EXPECT_EQ(gemm_isa_for(DType::kBF16) == GemmIsa::kAvx512Bf16, gemm_isa_available(GemmIsa::kAvx512Bf16));
  EXPECT_THROW(gemm_isa_for(DType::kI32), Error);
}

TEST(GemmPaths, UnavailableOrUnfitPathIsAnError) {
  const float x = 1.0f;
  float c = 0.0f;
  EXPECT_THROW(gemm_strided_batched_on(GemmIsa::kAvx512Bf16, DType::kF32, false, false, 1, 1, 1, 1.0f, &x, 1, 0, &x,
                                       1, 0, 0.0f, &c, 1, 0, 1),
               Error);
  for (GemmIsa isa : {GemmIsa::kAvx2, GemmIsa::kAvx512}) {
    if (gemm_isa_available(isa)) continue;
    EXPECT_THROW(gemm_strided_batched_on(isa, DType::kF32, false, false, 1, 1, 1, 1.0f, &x, 1, 0, &x, 1, 0, 0.0f, &c,
                                         1, 0, 1),
                 Error);
  }
}

// BERTFORGE_GEMM_ISA is read once per process: each case runs in a fresh child process (death-test machinery,
// "threadsafe" style re-executes this binary), sets the variable, and exits 0 when the choice is right (2 when
// not); an error is printed and exits 1. want_f32 == kAvx512Bf16 stands for "any path that takes f32".
int ChildWithForcedPath(const char* value, GemmIsa want_f32, GemmIsa want_bf16) {
  setenv("BERTFORGE_GEMM_ISA", value, 1);
  try {
    const GemmIsa f32 = gemm_isa_for(DType::kF32);
    const bool f32_ok = want_f32 == GemmIsa::kAvx512Bf16 ? gemm_isa_accepts(f32, DType::kF32) : f32 == want_f32;
    std::exit(f32_ok && gemm_isa_for(DType::kF16) == f32 && gemm_isa_for(DType::kBF16) == want_bf16 ? 0 : 2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(1);
  }
}

TEST(GemmPathsDeathTest, EnvironmentVariableForcesAPath) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ChildWithForcedPath("scalar", GemmIsa::kScalar, GemmIsa::kScalar), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(ChildWithForcedPath("avx1024", GemmIsa::kScalar, GemmIsa::kScalar), ::testing::ExitedWithCode(1),
              "BERTFORGE_GEMM_ISA=avx1024: expected scalar, avx2, avx512 or avx512-bf16");
  for (GemmIsa isa : {GemmIsa::kAvx2, GemmIsa::kAvx512, GemmIsa::kAvx512Bf16}) {
    const std::string name = gemm_isa_name(isa);
    SCOPED_TRACE(name);
    if (!gemm_isa_available(isa)) {
      EXPECT_EXIT(ChildWithForcedPath(name.c_str(), isa, isa), ::testing::ExitedWithCode(1), "lacks that GEMM path");
    } else {
      // avx512-bf16 takes bf16 only: FP32 and f16 keep their default.
      EXPECT_EXIT(ChildWithForcedPath(name.c_str(), isa, isa), ::testing::ExitedWithCode(0), "");
    }
  }
}

}  // namespace
}  // namespace bertforge::cpu
