// tests/bench/bench_gemm.cpp — GFLOP/s of bertforge::cpu::gemm on BERT-base shapes, next to PyTorch in the same run.
//
// For each shape: WARMUP untimed calls, then REPEATS timed calls, beta = 0 (C written, not read); GFLOP/s from the
// median time, and in parentheses from the best time (on a shared machine the two differ: the best shows what the
// code can do, the median what it did). PyTorch (tests/bench/bench_gemm_torch.py, run with /usr/bin/python3) is
// timed the same way, with the same shapes, repeats and thread count (torch.set_num_threads =
// omp_get_max_threads()), in the same environment, right after bertforge.
// Output: one line per shape: batch x (M x N x K), transposes, bertforge GFLOP/s, torch GFLOP/s, ratio of medians.
// Then the same for 16-bit operands (mixed precision, ops/autocast.h): gemm_strided_batched_16 with bf16 and f16
// inputs and FP32 output, against torch's bf16 matmul (bf16 output; torch has no f16 matmul on a CPU).
#include "ops/cpu/gemm.h"

#include <omp.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "tests/bench/bench_util.h"

namespace {

constexpr int kWarmup = 3;
constexpr int kRepeats = 20;

struct Shape {
  int64_t batch, M, N, K;
  bool trans_a, trans_b;
  const char* what;  // where the shape occurs in BERT-base (batch 8 x seq 128 = 1024 tokens, d = 768, 12 heads)
  std::string key() const {  // the same "batch,M,N,K,ta,tb" string the python script echoes back
    char buf[96];
    std::snprintf(buf, sizeof buf, "%ld,%ld,%ld,%ld,%d,%d", static_cast<long>(batch), static_cast<long>(M),
                  static_cast<long>(N), static_cast<long>(K), trans_a ? 1 : 0, trans_b ? 1 : 0);
    return buf;
  }
};

const Shape kShapes[] = {
    {1, 1024, 768, 768, false, false, "QKV / attention-output projection, x @ W"},
    {1, 1024, 3072, 768, false, false, "FFN up, x @ W"},
    {1, 1024, 768, 3072, false, false, "FFN down, x @ W"},
    {1, 1024, 768, 768, false, true, "linear layer x @ W^T, W (out,in)"},
    {1, 1024, 3072, 768, false, true, "FFN up, x @ W^T"},
    {1, 1024, 768, 3072, false, true, "FFN down, x @ W^T"},
    {1, 768, 768, 1024, true, false, "weight gradient dY^T @ x"},
    {96, 128, 128, 64, false, true, "attention scores Q @ K^T, 96 heads"},
    {96, 128, 64, 128, false, false, "attention probs @ V, 96 heads"},
};

struct Rate {
  double median = 0.0, best = 0.0;  // GFLOP/s
};

// Operands of `input_type` (f32, or bf16 / f16 through gemm_strided_batched_16); C is FP32.
Rate bertforge_gflops(const Shape& s, bertforge::DType input_type) {
  // Stored sizes: A is (M,K) or (K,M); B is (K,N) or (N,K); both have the same element count either way.
  const int64_t a_size = s.M * s.K, b_size = s.K * s.N, c_size = s.M * s.N;
  std::vector<float> A(a_size * s.batch), B(b_size * s.batch), C(c_size * s.batch);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : A) x = dist(rng);
  for (float& x : B) x = dist(rng);
  const int64_t lda = s.trans_a ? s.M : s.K, ldb = s.trans_b ? s.K : s.N;

  auto bits16 = [input_type](float x) {  // bf16 or f16 bits
    return input_type == bertforge::DType::kF16 ? bertforge::FloatToF16(x).bits : bertforge::FloatToBf16(x).bits;
  };
  std::vector<uint16_t> A16(A.size()), B16(B.size());
  for (size_t i = 0; i < A.size(); ++i) A16[i] = bits16(A[i]);
  for (size_t i = 0; i < B.size(); ++i) B16[i] = bits16(B[i]);

  auto run = [&] {
    if (input_type != bertforge::DType::kF32) {
      bertforge::cpu::gemm_strided_batched_16(input_type, s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, A16.data(), lda,
                                              a_size, B16.data(), ldb, b_size, 0.0f, C.data(), s.N, c_size, s.batch);
    } else if (s.batch == 1) {
      bertforge::cpu::gemm(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(),
                           s.N);
    } else {
      bertforge::cpu::gemm_strided_batched(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, A.data(), lda, a_size,
                                           B.data(), ldb, b_size, 0.0f, C.data(), s.N, c_size, s.batch);
    }
  };
  const bertforge::bench::Timing t = bertforge::bench::time_runs(run, kWarmup, kRepeats);
  const double gflop = 2.0 * s.batch * s.M * s.N * s.K / 1e9;
  return {gflop / t.median, gflop / t.best};
}

// Runs the PyTorch script on all shapes at once with operands of torch_dtype ("float32" or "bfloat16"); returns
// GFLOP/s by shape key (empty if torch is not available).
std::map<std::string, Rate> torch_gflops(int threads, const char* torch_dtype) {
  std::vector<std::string> args = {std::to_string(threads), std::to_string(kWarmup), std::to_string(kRepeats),
                                   torch_dtype};
  for (const Shape& s : kShapes) args.push_back(s.key());
  std::map<std::string, Rate> result;
  for (const auto& [key, values] : bertforge::bench::run_torch_peer("bench_gemm_torch.py", args)) {
    if (values.size() == 2) result[key] = {values[0], values[1]};
  }
  return result;
}

// Single-precision peak, two ways; 0 where unknown.
// Nominal: threads x FLOP/cycle x the clock in /proc/cpuinfo. An AVX2 core with two 256-bit FMA pipes (Zen 2/3/4,
// Haswell and later) does 2 pipes x 8 lanes x 2 FLOP = 32 FLOP/cycle. Turbo clocks can exceed the nominal one.
double nominal_peak_gflops(int threads, double* ghz) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  *ghz = 0.0;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("cpu MHz", 0) == 0) {
      *ghz = std::atof(line.substr(line.find(':') + 1).c_str()) / 1000.0;
      break;
    }
  }
  return threads * 32.0 * *ghz;
}

// Measured: every thread runs 12 independent chains of register-only FMAs (no memory traffic at all), which is
// the most any GEMM could reach on this machine at the clock it actually runs at. Best of 3 attempts.
double measured_peak_gflops(int threads) {
#if defined(__AVX2__) && defined(__FMA__)
  constexpr int64_t kIters = 10'000'000;
  double best = 0.0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto start = std::chrono::steady_clock::now();
    float sink = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      // Twelve named accumulators (12 FMA chains cover 2 pipes x 4 cycles latency); named variables, unlike an
      // array, are kept in registers at any optimisation level. Distinct start values, or the compiler merges the
      // identical chains into one.
      const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
      auto start_value = [](int i) { return _mm256_set1_ps(1.0f + 0.125f * i); };
      __m256 a0 = start_value(0), a1 = start_value(1), a2 = start_value(2), a3 = start_value(3);
      __m256 a4 = start_value(4), a5 = start_value(5), a6 = start_value(6), a7 = start_value(7);
      __m256 a8 = start_value(8), a9 = start_value(9), a10 = start_value(10), a11 = start_value(11);
      for (int64_t i = 0; i < kIters; ++i) {
        a0 = _mm256_fmadd_ps(x, a0, y), a1 = _mm256_fmadd_ps(x, a1, y), a2 = _mm256_fmadd_ps(x, a2, y);
        a3 = _mm256_fmadd_ps(x, a3, y), a4 = _mm256_fmadd_ps(x, a4, y), a5 = _mm256_fmadd_ps(x, a5, y);
        a6 = _mm256_fmadd_ps(x, a6, y), a7 = _mm256_fmadd_ps(x, a7, y), a8 = _mm256_fmadd_ps(x, a8, y);
        a9 = _mm256_fmadd_ps(x, a9, y), a10 = _mm256_fmadd_ps(x, a10, y), a11 = _mm256_fmadd_ps(x, a11, y);
      }
      const __m256 total = _mm256_add_ps(
          _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                        _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7))),
          _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
      sink += _mm256_cvtss_f32(total);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // 12 chains x 8 lanes x 2 FLOP per iteration; `sink` is used so the loop cannot be optimised away.
    if (sink != 0.0f) best = std::max(best, 2.0 * 8 * 12 * kIters * threads / seconds / 1e9);
  }
  return best;
#else
  (void)threads;
  return 0.0;
#endif
}

}  // namespace

int main() {
  const int threads = omp_get_max_threads();
  double ghz = 0.0;
  const double nominal_peak = nominal_peak_gflops(threads, &ghz);
  std::ifstream loadavg("/proc/loadavg");
  std::string load1;
  loadavg >> load1;

  double peak = measured_peak_gflops(threads);
  using bertforge::DType;
  std::map<DType, std::vector<Rate>> ours;
  for (DType type : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (const Shape& s : kShapes) ours[type].push_back(bertforge_gflops(s, type));
  }
  peak = std::max(peak, measured_peak_gflops(threads));  // before and after: the better one had the machine to itself
  // After ours: no overlap between the two.
  std::map<DType, std::map<std::string, Rate>> torch = {{DType::kF32, torch_gflops(threads, "float32")},
                                                        {DType::kBF16, torch_gflops(threads, "bfloat16")}};

  std::printf("bench_gemm: backend %s, %d threads, median (best) of %d after %d warm-up\n",
              bertforge::cpu::gemm_backend_name(), threads, kRepeats, kWarmup);
  std::printf("load average %s (other processes on the machine make the figures below noisy)\n", load1.c_str());
  std::printf("peak: nominal %d threads x 32 FLOP/cycle x %.2f GHz = %.1f GFLOP/s; measured FMA loop %.1f GFLOP/s "
              "(%% of peak below is of the measured one)\n",
              threads, ghz, nominal_peak, peak);
  if (torch[DType::kF32].empty()) std::printf("torch: not installed\n");

  for (DType type : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (size_t i = 0; i < std::size(kShapes); ++i) {
      const Shape& s = kShapes[i];
      const Rate& rate = ours[type][i];
      char dims[64];
      std::snprintf(dims, sizeof dims, "%ldx(%ldx%ldx%ld) %c%c", static_cast<long>(s.batch), static_cast<long>(s.M),
                    static_cast<long>(s.N), static_cast<long>(s.K), s.trans_a ? 'T' : 'N', s.trans_b ? 'T' : 'N');
      std::printf("gemm %-4s %-22s bertforge %6.1f (%6.1f) GFLOP/s", bertforge::dtype_name(type), dims, rate.median,
                  rate.best);
      if (peak > 0) std::printf(" %3.0f%% of peak", 100.0 * rate.median / peak);
      const std::map<std::string, Rate>& peer = torch[type];  // empty for f16
      if (const auto it = peer.find(s.key()); it != peer.end()) {
        std::printf("  torch %6.1f (%6.1f) GFLOP/s  ratio %.2f", it->second.median, it->second.best,
                    rate.median / it->second.median);
      }
      std::printf("  | %s\n", s.what);
    }
  }
  return 0;
}
