// tests/bench/bench_gemm.cpp — GFLOP/s of bertforge::cpu::gemm on BERT-base shapes, per path (instruction set),
// next to PyTorch in the same run.
//
// For each shape: WARMUP untimed calls, then REPEATS timed calls, beta = 0 (C written, not read); GFLOP/s from the
// median time, and in parentheses from the best time (on a shared machine the two differ: the best shows what the
// code can do, the median what it did). PyTorch (tests/bench/bench_gemm_torch.py, run with /usr/bin/python3) is
// timed the same way, with the same shapes, repeats and thread count (torch.set_num_threads =
// omp_get_max_threads()), in the same environment, right after bertforge.
// The header names the paths the library chose for each operand type (ops/cpu/gemm.h; BERTFORGE_GEMM_ISA forces
// one). Then one line per shape and path:
//   f32:  every FP32 path the CPU has (avx2, avx512), against torch's FP32 matmul;
//   bf16: widened to FP32 on the default FP32 path, and avx512-bf16 (vdpbf16ps) where the CPU has it, against
//         torch's bf16 matmul (bf16 output; oneDNN's AVX512-BF16 kernels where the CPU has them), plus the ratio to
//         our FP32 GEMM on the same shape (the mixed-precision speed-up);
//   f16:  widened on the default FP32 path (torch has no f16 matmul on a CPU).
// Scalar is timed only where it is the only path.
#include "ops/cpu/gemm.h"

#include <omp.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "tests/bench/bench_util.h"

namespace {

using bertforge::DType;
using bertforge::cpu::GemmIsa;

constexpr int kWarmup = 3;
constexpr int kRepeats = 20;

struct Shape {
  int64_t batch, M, N, K;
  bool trans_a, trans_b;
  const char* what;  // where the shape occurs in BERT-base (batch 32 x seq 128 = 4096 tokens, d = 768, 12 heads)
  std::string key() const {  // the same "batch,M,N,K,ta,tb" string the python script echoes back
    char buf[96];
    std::snprintf(buf, sizeof buf, "%ld,%ld,%ld,%ld,%d,%d", static_cast<long>(batch), static_cast<long>(M),
                  static_cast<long>(N), static_cast<long>(K), trans_a ? 1 : 0, trans_b ? 1 : 0);
    return buf;
  }
  bool linear() const { return batch == 1; }
};

const Shape kShapes[] = {
    {1, 4096, 768, 768, false, false, "QKV / attention-output projection, x @ W"},
    {1, 4096, 3072, 768, false, false, "FFN up, x @ W"},
    {1, 4096, 768, 3072, false, false, "FFN down, x @ W"},
    {1, 4096, 768, 768, false, true, "linear layer x @ W^T, W (out,in)"},
    {1, 4096, 3072, 768, false, true, "FFN up, x @ W^T"},
    {1, 4096, 768, 3072, false, true, "FFN down, x @ W^T"},
    {1, 768, 768, 4096, true, false, "weight gradient dY^T @ x"},
    {384, 128, 128, 64, false, true, "attention scores Q @ K^T, 384 heads"},
    {384, 128, 64, 128, false, false, "attention probs @ V, 384 heads"},
};

struct Rate {
  double median = 0.0, best = 0.0;  // GFLOP/s
};

// Operands and results 64-byte aligned, as bertforge's tensors (kCpuAlignment, core/device.h) and torch's are: a C
// whose rows start mid cache line (std::vector's 16-byte alignment) measured up to 10% slower on the AVX-512 paths.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};
template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

// Operands of `input_type` (f32, bf16 or f16) on path `isa`; C is FP32.
Rate bertforge_gflops(const Shape& s, DType input_type, GemmIsa isa) {
  // Stored sizes: A is (M,K) or (K,M); B is (K,N) or (N,K); both have the same element count either way.
  const int64_t a_size = s.M * s.K, b_size = s.K * s.N, c_size = s.M * s.N;
  AlignedVector<float> A(a_size * s.batch), B(b_size * s.batch), C(c_size * s.batch);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : A) x = dist(rng);
  for (float& x : B) x = dist(rng);
  const int64_t lda = s.trans_a ? s.M : s.K, ldb = s.trans_b ? s.K : s.N;

  auto bits16 = [input_type](float x) {  // bf16 or f16 bits
    return input_type == DType::kF16 ? bertforge::FloatToF16(x).bits : bertforge::FloatToBf16(x).bits;
  };
  AlignedVector<uint16_t> A16, B16;
  if (input_type != DType::kF32) {
    for (float x : A) A16.push_back(bits16(x));
    for (float x : B) B16.push_back(bits16(x));
  }
  const void* a = input_type == DType::kF32 ? static_cast<const void*>(A.data()) : A16.data();
  const void* b = input_type == DType::kF32 ? static_cast<const void*>(B.data()) : B16.data();

  auto run = [&] {
    bertforge::cpu::gemm_strided_batched_on(isa, input_type, s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, a, lda,
                                            a_size, b, ldb, b_size, 0.0f, C.data(), s.N, c_size, s.batch);
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

// Single-precision peak, nominal: threads x FLOP/cycle x the clock in /proc/cpuinfo. A core with two 256-bit FMA
// pipes (Zen 2/3/4, Haswell and later; Zen 4 runs a zmm FMA on both) does 2 x 8 lanes x 2 FLOP = 32 FLOP/cycle.
// Turbo clocks can exceed the nominal one. 0 where unknown.
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

constexpr int64_t kPeakIters = 10'000'000;

#if defined(__x86_64__)
// Every thread runs 12 independent chains of register-only FMAs (no memory traffic at all): the most an FP32 GEMM
// could reach at the clock the machine actually runs. Twelve named accumulators (12 chains cover 2 pipes x 4 cycles
// of latency); named variables, unlike an array, stay in registers. Distinct start values, or the compiler merges
// the identical chains. Returns a value that depends on all chains, so the loop is not optimised away.
__attribute__((target("avx2,fma"))) float fma_loop() {
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
  __m256 a0 = _mm256_set1_ps(1.0f), a1 = _mm256_set1_ps(1.125f), a2 = _mm256_set1_ps(1.25f);
  __m256 a3 = _mm256_set1_ps(1.375f), a4 = _mm256_set1_ps(1.5f), a5 = _mm256_set1_ps(1.625f);
  __m256 a6 = _mm256_set1_ps(1.75f), a7 = _mm256_set1_ps(1.875f), a8 = _mm256_set1_ps(2.0f);
  __m256 a9 = _mm256_set1_ps(2.125f), a10 = _mm256_set1_ps(2.25f), a11 = _mm256_set1_ps(2.375f);
  for (int64_t i = 0; i < kPeakIters; ++i) {
    a0 = _mm256_fmadd_ps(x, a0, y), a1 = _mm256_fmadd_ps(x, a1, y), a2 = _mm256_fmadd_ps(x, a2, y);
    a3 = _mm256_fmadd_ps(x, a3, y), a4 = _mm256_fmadd_ps(x, a4, y), a5 = _mm256_fmadd_ps(x, a5, y);
    a6 = _mm256_fmadd_ps(x, a6, y), a7 = _mm256_fmadd_ps(x, a7, y), a8 = _mm256_fmadd_ps(x, a8, y);
    a9 = _mm256_fmadd_ps(x, a9, y), a10 = _mm256_fmadd_ps(x, a10, y), a11 = _mm256_fmadd_ps(x, a11, y);
  }
  const __m256 total = _mm256_add_ps(
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                    _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7))),
      _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  return _mm256_cvtss_f32(total);
}

// The same with 12 chains of vdpbf16ps on zmm (32 multiply-adds each): the ceiling of the avx512-bf16 path.
__attribute__((target("avx512f,avx512bf16"))) float dpbf16_loop() {
  const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x3a803a80);
  __m512 a0 = _mm512_set1_ps(1.0f), a1 = _mm512_set1_ps(1.125f), a2 = _mm512_set1_ps(1.25f);
  __m512 a3 = _mm512_set1_ps(1.375f), a4 = _mm512_set1_ps(1.5f), a5 = _mm512_set1_ps(1.625f);
  __m512 a6 = _mm512_set1_ps(1.75f), a7 = _mm512_set1_ps(1.875f), a8 = _mm512_set1_ps(2.0f);
  __m512 a9 = _mm512_set1_ps(2.125f), a10 = _mm512_set1_ps(2.25f), a11 = _mm512_set1_ps(2.375f);
  for (int64_t i = 0; i < kPeakIters; ++i) {
    a0 = _mm512_dpbf16_ps(a0, x, y), a1 = _mm512_dpbf16_ps(a1, x, y), a2 = _mm512_dpbf16_ps(a2, x, y);
    a3 = _mm512_dpbf16_ps(a3, x, y), a4 = _mm512_dpbf16_ps(a4, x, y), a5 = _mm512_dpbf16_ps(a5, x, y);
    a6 = _mm512_dpbf16_ps(a6, x, y), a7 = _mm512_dpbf16_ps(a7, x, y), a8 = _mm512_dpbf16_ps(a8, x, y);
    a9 = _mm512_dpbf16_ps(a9, x, y), a10 = _mm512_dpbf16_ps(a10, x, y), a11 = _mm512_dpbf16_ps(a11, x, y);
  }
  const __m512 total = _mm512_add_ps(
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                    _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
      _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  return _mm512_cvtss_f32(total);
}
#endif

// GFLOP/s of `loop` (flop_per_iter per iteration) on every thread at once, best of 3 attempts.
template <typename Loop>
double measured_peak_gflops(int threads, double flop_per_iter, Loop loop) {
  double best = 0.0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto start = std::chrono::steady_clock::now();
    float sink = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += loop();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (sink != 0.0f) best = std::max(best, flop_per_iter * kPeakIters * threads / seconds / 1e9);
  }
  return best;
}

struct Peaks {
  double fp32 = 0.0, bf16 = 0.0;  // GFLOP/s, 0 where the CPU lacks the instructions
};

Peaks measure_peaks(int threads) {
  Peaks p;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    p.fp32 = measured_peak_gflops(threads, 2.0 * 8 * 12, fma_loop);  // 12 chains x 8 lanes x 2 FLOP
  }
  if (bertforge::cpu::gemm_isa_available(GemmIsa::kAvx512Bf16)) {
    p.bf16 = measured_peak_gflops(threads, 2.0 * 32 * 12, dpbf16_loop);  // 12 chains x 32 multiply-adds x 2 FLOP
  }
#endif
  return p;
}

// The paths timed for one operand type (see the top of the file).
std::vector<GemmIsa> paths_for(DType type) {
  using bertforge::cpu::gemm_isa_available;
  const GemmIsa fp32_default = bertforge::cpu::gemm_isa_for(DType::kF32);
  std::vector<GemmIsa> paths;
  if (type == DType::kF32) {
    for (GemmIsa isa : {GemmIsa::kAvx2, GemmIsa::kAvx512}) {
      if (gemm_isa_available(isa)) paths.push_back(isa);
    }
    if (paths.empty()) paths.push_back(GemmIsa::kScalar);
  } else {
    paths.push_back(fp32_default);
    if (type == DType::kBF16 && gemm_isa_available(GemmIsa::kAvx512Bf16)) paths.push_back(GemmIsa::kAvx512Bf16);
  }
  return paths;
}

struct Row {
  DType type;
  GemmIsa isa;
  std::vector<Rate> rates;  // one per shape
};

}  // namespace

int main() {
  using bertforge::cpu::gemm_isa_name;
  const int threads = omp_get_max_threads();
  double ghz = 0.0;
  const double nominal_peak = nominal_peak_gflops(threads, &ghz);
  std::ifstream loadavg("/proc/loadavg");
  std::string load1;
  loadavg >> load1;

  Peaks peak = measure_peaks(threads);
  std::vector<Row> rows;
  for (DType type : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (GemmIsa isa : paths_for(type)) {
      Row row{type, isa, {}};
      for (const Shape& s : kShapes) row.rates.push_back(bertforge_gflops(s, type, isa));
      rows.push_back(row);
    }
  }
  const Peaks after = measure_peaks(threads);  // before and after: the better one had the machine to itself
  peak.fp32 = std::max(peak.fp32, after.fp32), peak.bf16 = std::max(peak.bf16, after.bf16);
  // After ours: no overlap between the two.
  std::map<DType, std::map<std::string, Rate>> torch = {{DType::kF32, torch_gflops(threads, "float32")},
                                                        {DType::kBF16, torch_gflops(threads, "bfloat16")}};

  std::string available;
  for (GemmIsa isa : bertforge::cpu::gemm_available_isas()) available += std::string(" ") + gemm_isa_name(isa);
  std::printf("bench_gemm: %s; paths chosen: %s (available:%s); %d threads, median (best) of %d after %d warm-up\n",
              bertforge::bench::cpu_model().c_str(), bertforge::cpu::gemm_paths_summary().c_str(), available.c_str(),
              threads, kRepeats, kWarmup);
  std::printf("load average %s (other processes on the machine make the figures below noisy)\n", load1.c_str());
  std::printf("peak: nominal %d threads x 32 FLOP/cycle x %.2f GHz = %.1f GFLOP/s; measured FMA loop %.1f GFLOP/s",
              threads, ghz, nominal_peak, peak.fp32);
  if (peak.bf16 > 0) std::printf(", vdpbf16ps loop %.1f GFLOP/s", peak.bf16);
  std::printf(" (%% of peak below is of the measured loop of the path's instruction)\n");
  if (torch[DType::kF32].empty()) std::printf("torch: not installed\n");

  // Our FP32 GEMM on the default path, per shape: what the 16-bit rows are compared with.
  const GemmIsa fp32_default = bertforge::cpu::gemm_isa_for(DType::kF32);
  const Row* fp32_row = nullptr;
  for (const Row& row : rows) {
    if (row.type == DType::kF32 && row.isa == fp32_default) fp32_row = &row;
  }

  for (const Row& row : rows) {
    for (size_t i = 0; i < std::size(kShapes); ++i) {
      const Shape& s = kShapes[i];
      const Rate& rate = row.rates[i];
      char dims[64], path[32];
      std::snprintf(dims, sizeof dims, "%ldx(%ldx%ldx%ld) %c%c", static_cast<long>(s.batch), static_cast<long>(s.M),
                    static_cast<long>(s.N), static_cast<long>(s.K), s.trans_a ? 'T' : 'N', s.trans_b ? 'T' : 'N');
      const bool widened = row.type != DType::kF32 && row.isa != GemmIsa::kAvx512Bf16;
      std::snprintf(path, sizeof path, "%s%s", gemm_isa_name(row.isa), widened ? "(wide)" : "");
      std::printf("gemm %-4s %-17s %-22s bertforge %6.1f (%6.1f) GFLOP/s", bertforge::dtype_name(row.type), path, dims,
                  rate.median, rate.best);
      const double row_peak = row.isa == GemmIsa::kAvx512Bf16 ? peak.bf16 : peak.fp32;
      if (row_peak > 0) std::printf(" %3.0f%% of peak", 100.0 * rate.median / row_peak);
      const std::map<std::string, Rate>& peer = torch[row.type];  // empty for f16
      if (const auto it = peer.find(s.key()); it != peer.end()) {
        std::printf("  torch %6.1f (%6.1f)  ratio %.2f", it->second.median, it->second.best,
                    rate.median / it->second.median);
      }
      if (row.type != DType::kF32 && fp32_row != nullptr) {
        std::printf("  x f32 %.2f", rate.median / fp32_row->rates[i].median);
      } else if (row.type == DType::kF32 && row.isa != fp32_default && fp32_row != nullptr) {
        std::printf("  x %s %.2f", gemm_isa_name(fp32_default), rate.median / fp32_row->rates[i].median);
      }
      std::printf("  | %s\n", s.what);
    }
  }
  return 0;
}
