// tests/bench/bench_int8_gemm.cpp — int8 GEMM throughput (quant/int8_gemm.h) against the FP32 GEMM of the same
// linear layer (ops/cpu/gemm.h), on BERT-base's linear shapes, plus PyTorch's dynamic int8 Linear as a peer.
//
// y (M,N) = x (M,K) W^T with W (N,K): (N,K) = (768,768) attention projections / attention output,
// (3072,768) FFN intermediate, (768,3072) FFN output; M = 1024 and 2048 tokens. Figures are in GOP/s = 2*M*N*K /
// median time, one line per shape:
//   fp32      bertforge::cpu::gemm(x, W^T), no bias
//   int8 full quantize_activations(x) + int8_gemm_f32 (int32 GEMM + dequantizing epilogue with bias): what a
//             quantized linear layer costs, compared with fp32 in "ratio"
//   int8 gemm int8_gemm_f32 on already-quantized activations (kernel + epilogue)
//   int8 s32  int8_gemm_s32: the raw kernel, int32 out
//   7-bit     "int8 full" and "int8 gemm" with activations quantized to 7 bits (a_bits = 7), which the AVX2 path
//             runs without its sign trick, compared with fp32 in "ratio 7-bit"
//   per-token quantize_activations_per_row(x) (each row's own min/max, scale and zero point) + int8_gemm_f32 with
//             the per-row epilogue: the dynamic per-token int8 Linear, one line per shape after the table, with its
//             ratio to fp32 and to the static per-tensor "int8 full"
//   torch     torch.ao.nn.quantized.dynamic.Linear (int8, activations quantized on the fly) and torch FP32 linear,
//             from tests/bench/bench_int8_gemm_torch.py, run after ours
// The int8 path is the one int8_gemm_best_isa() picks (AVX2 on AMD Zen 3; see int8_gemm_avx2.cpp for why AVX2 int8
// cannot reach 2x FP32 there), and the scalar fallback on the first shape for scale.
#include <omp.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ops/cpu/gemm.h"
#include "quant/int8_gemm.h"
#include "tests/bench/bench_util.h"

namespace {

using namespace bertforge::quant;

constexpr int kWarmup = 2;
constexpr int kRepeats = 7;

struct Shape {
  int64_t M, N, K;
  const char* what;
  std::string key() const { return std::to_string(M) + "," + std::to_string(N) + "," + std::to_string(K); }
};

const Shape kShapes[] = {
    {1024, 768, 768, "attention q/k/v/output projection"}, {1024, 3072, 768, "FFN intermediate"},
    {1024, 768, 3072, "FFN output"},                       {2048, 768, 768, "attention projection, 2048 tokens"},
    {2048, 3072, 768, "FFN intermediate, 2048 tokens"},    {2048, 768, 3072, "FFN output, 2048 tokens"},
};

struct Rates {
  double fp32 = 0, full = 0, gemm = 0, s32 = 0, full7 = 0, gemm7 = 0, per_token = 0;
};

Rates measure(const Shape& s, Int8GemmIsa isa) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(s.M * s.K), w(s.N * s.K), y(s.M * s.N), bias(s.N, 0.1f), w_scales(s.N, 0.01f);
  for (float& v : x) v = normal(rng);
  for (float& v : w) v = 0.05f * normal(rng);
  std::uniform_int_distribution<int> code(-127, 127);
  std::vector<int8_t> wq(s.N * s.K);
  for (int8_t& v : wq) v = static_cast<int8_t>(code(rng));
  const PackedInt8Weight packed = pack_int8_weight(wq.data(), s.N, s.K, s.K, isa);
  std::vector<uint8_t> xq(s.M * s.K);
  std::vector<int32_t> c(s.M * s.N);
  Int8Epilogue e;
  e.a_scale = 8.0f / 255.0f;
  e.a_zero_point = 128;
  e.w_scales = w_scales.data();
  e.num_w_scales = s.N;
  e.bias = bias.data();

  const double gop = 2.0 * s.M * s.N * s.K / 1e9;
  auto rate = [&](auto&& fn) { return gop / bertforge::bench::time_runs(fn, kWarmup, kRepeats).median; };
  Rates r;
  r.fp32 = rate([&] {
    bertforge::cpu::gemm(false, true, s.M, s.N, s.K, 1.0f, x.data(), s.K, w.data(), s.K, 0.0f, y.data(), s.N);
  });
  r.full = rate([&] {
    quantize_activations(x.data(), s.M, s.K, s.K, e.a_scale, e.a_zero_point, xq.data(), s.K);
    int8_gemm_f32(s.M, xq.data(), s.K, packed, e, y.data(), s.N);
  });
  r.gemm = rate([&] { int8_gemm_f32(s.M, xq.data(), s.K, packed, e, y.data(), s.N); });
  r.s32 = rate([&] { int8_gemm_s32(s.M, xq.data(), s.K, packed, c.data(), s.N); });
  Int8Epilogue e7 = e;
  e7.a_bits = 7;
  e7.a_scale = 8.0f / 127.0f;
  e7.a_zero_point = 64;
  r.full7 = rate([&] {
    quantize_activations(x.data(), s.M, s.K, s.K, e7.a_scale, e7.a_zero_point, xq.data(), s.K, 7);
    int8_gemm_f32(s.M, xq.data(), s.K, packed, e7, y.data(), s.N);
  });
  r.gemm7 = rate([&] { int8_gemm_f32(s.M, xq.data(), s.K, packed, e7, y.data(), s.N); });
  std::vector<float> row_scales(s.M);
  std::vector<int32_t> row_zero_points(s.M);
  Int8Epilogue per_row = e;
  per_row.a_scales = row_scales.data();
  per_row.a_zero_points = row_zero_points.data();
  r.per_token = rate([&] {
    quantize_activations_per_row(x.data(), s.M, s.K, s.K, 8, xq.data(), s.K, row_scales.data(),
                                 row_zero_points.data());
    int8_gemm_f32(s.M, xq.data(), s.K, packed, per_row, y.data(), s.N);
  });
  return r;
}

}  // namespace

int main() {
  const int threads = omp_get_max_threads();
  std::ifstream loadavg("/proc/loadavg");
  std::string load1;
  loadavg >> load1;
  const Int8GemmIsa isa = int8_gemm_best_isa();
  std::string available;
  for (Int8GemmIsa i : int8_gemm_available_isas()) available += std::string(" ") + int8_gemm_isa_name(i);

  std::vector<Rates> ours;
  for (const Shape& s : kShapes) ours.push_back(measure(s, isa));
  const Rates scalar = measure(kShapes[0], Int8GemmIsa::kScalar);

  std::vector<std::string> args = {std::to_string(threads), std::to_string(kWarmup), std::to_string(kRepeats)};
  for (const Shape& s : kShapes) args.push_back(s.key());
  const auto torch = bertforge::bench::run_torch_peer("bench_int8_gemm_torch.py", args);

  std::printf("bench_int8_gemm: int8 path %s (available:%s), fp32 gemm %s, %d threads, median of %d after %d warm-up\n",
              int8_gemm_isa_name(isa), available.c_str(), bertforge::cpu::gemm_backend_name(), threads, kRepeats,
              kWarmup);
  std::printf("load average %s (other processes on the machine make the figures below noisy)\n", load1.c_str());
  std::string engine = "not installed";
  for (const auto& [key, values] : torch) {
    if (key.rfind("engine_", 0) == 0) engine = key.substr(7);
  }
  std::printf("torch quantized engine: %s\n", engine.c_str());
  for (size_t i = 0; i < ours.size(); ++i) {
    const Shape& s = kShapes[i];
    const Rates& r = ours[i];
    std::printf("int8 M %4ld (N,K) (%4ld,%4ld): fp32 %6.1f | int8 full %6.1f gemm %6.1f s32 %6.1f | 7-bit full "
                "%6.1f gemm %6.1f GOP/s | ratio full/fp32 %.2f, 7-bit %.2f",
                static_cast<long>(s.M), static_cast<long>(s.N), static_cast<long>(s.K), r.fp32, r.full, r.gemm,
                r.s32, r.full7, r.gemm7, r.full / r.fp32, r.full7 / r.fp32);
    const auto it = torch.find(s.key());
    if (it != torch.end() && it->second.size() == 2) {
      std::printf(" | torch int8 %6.1f fp32 %6.1f, ours/torch int8 %.2f", it->second[0], it->second[1],
                  r.full / it->second[0]);
    }
    std::printf("  | %s\n", s.what);
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    const Shape& s = kShapes[i];
    const Rates& r = ours[i];
    std::printf("int8 per-token (%s) M %4ld (N,K) (%4ld,%4ld): fp32 %6.1f | per-token full %6.1f GOP/s | ratio "
                "per-token/fp32 %.2f, per-token/per-tensor %.2f  | %s\n",
                int8_gemm_isa_name(isa), static_cast<long>(s.M), static_cast<long>(s.N), static_cast<long>(s.K),
                r.fp32, r.per_token, r.per_token / r.fp32, r.per_token / r.full, s.what);
  }
  std::printf("int8 scalar fallback, M %ld (N,K) (%ld,%ld): full %.1f gemm %.1f GOP/s\n",
              static_cast<long>(kShapes[0].M), static_cast<long>(kShapes[0].N), static_cast<long>(kShapes[0].K),
              scalar.full, scalar.gemm);
  return 0;
}
