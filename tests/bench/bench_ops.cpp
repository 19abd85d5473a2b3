// tests/bench/bench_ops.cpp — GB/s of the memory-bound CPU kernels (LayerNorm, softmax, dropout, GELU) on BERT-base
// shapes, next to PyTorch in the same run, and the machine's copy bandwidth as the physical limit.
//
// GB/s = the op's minimal traffic (each input read once, each output written once, in bytes) / time, with the
// same byte count on both sides, so the ratio bertforge/torch is a ratio of times. Each figure: WARMUP untimed
// calls, then the median of REPEATS timed calls, on preallocated buffers. PyTorch (tests/bench/bench_ops_torch.py,
// run with /usr/bin/python3) times its own kernels (out= variants where faster) with the same shapes, repeats
// and thread count (torch.set_num_threads = omp_get_max_threads()), under the same environment.
// Output: one line per figure, "name, shape, bertforge GB/s, torch GB/s, ratio bertforge/torch".
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ops/cpu/philox_words.h"
#include "tests/support/cpu_kernels.h"
#include "tests/bench/bench_util.h"

namespace {

constexpr int kWarmup = 3;
constexpr int kRepeats = 15;

// BERT-base: batch 8 (or 32 for LayerNorm) x seq 128 tokens, d = 768, 12 heads, FFN 3072.
constexpr int64_t kLnRows = 16384, kLnCols = 768;
constexpr int64_t kBatch = 8, kHeads = 12, kSeq = 128;  // attention scores (B*H*T, T) = (12288, 128)
constexpr int64_t kGeluRows = 16384, kGeluCols = 3072;
constexpr float kGamma = -0.025f, kZeta = 1.0f;
constexpr float kDropoutP = 0.1f;  // BERT's attention_probs_dropout_prob

// Deterministic values in [lo, hi) without a slow RNG: a multiplicative hash of the index.
std::vector<float> filled(int64_t n, float lo, float hi, uint32_t salt) {
  std::vector<float> v(n);
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t h = (static_cast<uint32_t>(i) ^ salt) * 2654435761u;
    v[i] = lo + (hi - lo) * static_cast<float>(h >> 8) / 16777216.0f;
  }
  return v;
}

double median_seconds(const std::function<void()>& run) {
  return bertforge::bench::time_runs(run, kWarmup, kRepeats).median;
}

struct Figure {
  std::string name, shape;  // name is also the key the torch script answers with
  double bytes;
  double gbps = 0.0;
};

// STREAM-like copy b = a over two 256 MiB arrays; bytes = read + write (write-allocate traffic not counted).
double copy_bandwidth() {
  const int64_t n = int64_t{1} << 26;
  std::vector<float> a = filled(n, 0.0f, 1.0f, 1), b(n);
  const double s = median_seconds([&] {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) b[i] = a[i];
  });
  return 2.0 * n * sizeof(float) / s / 1e9;
}

std::vector<Figure> run_bertforge() {
  namespace cpu = bertforge::cpu;
  std::vector<Figure> figures;
  auto add = [&](const std::string& name, const std::string& shape, double floats, const std::function<void()>& run) {
    figures.push_back({name, shape, floats * sizeof(float)});
    figures.back().gbps = figures.back().bytes / median_seconds(run) / 1e9;
  };
  {
    const int64_t R = kLnRows, C = kLnCols;
    const std::vector<float> x = filled(R * C, -3.0f, 3.0f, 2), w = filled(C, 0.5f, 1.5f, 3),
                             b = filled(C, -0.5f, 0.5f, 4), dout = filled(R * C, -1.0f, 1.0f, 5);
    std::vector<float> out(R * C), mean(R), rstd(R), dx(R * C), dw(C), db(C);
    const std::string shape = std::to_string(R) + "x" + std::to_string(C);
    // reads x, weight, bias; writes out, mean, rstd
    add("layernorm_fwd", shape, 2.0 * R * C + 2.0 * C + 2.0 * R, [&] {
      cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), R, C, 1e-12f);
    });
    // reads dout, x, weight, mean, rstd; writes dx, dweight, dbias
    add("layernorm_bwd", shape, 3.0 * R * C + 3.0 * C + 2.0 * R, [&] {
      cpu::layernorm_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), mean.data(),
                              rstd.data(), R, C);
    });
  }
  {
    const int64_t R = kBatch * kHeads * kSeq, C = kSeq;
    const std::vector<float> x = filled(R * C, -4.0f, 4.0f, 6), dout = filled(R * C, -1.0f, 1.0f, 7);
    std::vector<float> mask = filled(kBatch * C, 0.0f, 0.0f, 0);  // (B, 1, 1, T): the last 28 keys are padding
    for (int64_t i = 0; i < kBatch * C; ++i) mask[i] = i % C >= 100 ? -1e4f : 0.0f;
    std::vector<float> probs(R * C), out(R * C), dx(R * C);
    const std::string shape = std::to_string(R) + "x" + std::to_string(C);
    add("softmax_fwd", shape, 2.0 * R * C, [&] { cpu::softmax_forward(probs.data(), x.data(), nullptr, R, C, 1); });
    add("softmax_fwd_mask", shape, 2.0 * R * C + kBatch * C,
        [&] { cpu::softmax_forward(probs.data(), x.data(), mask.data(), R, C, kHeads * kSeq); });
    add("softmax_bwd", shape, 3.0 * R * C, [&] { cpu::softmax_backward(dx.data(), dout.data(), probs.data(), R, C); });
    // reads x, mask; writes out and the unclipped probs
    add("clipped_softmax_fwd_mask", shape, 3.0 * R * C + kBatch * C, [&] {
      cpu::clipped_softmax_forward(out.data(), probs.data(), x.data(), mask.data(), R, C, kHeads * kSeq, kGamma, kZeta);
    });
    // Attention-probability dropout (the backward is the same kernel on dout): reads x, writes out.
    add("dropout_fwd", shape, 2.0 * R * C,
        [&] { cpu::dropout_forward(out.data(), x.data(), R * C, kDropoutP, /*seed=*/1, /*offset=*/2); });
  }
  {
    const int64_t n = kGeluRows * kGeluCols;
    const std::vector<float> x = filled(n, -4.0f, 4.0f, 8), dout = filled(n, -1.0f, 1.0f, 9);
    std::vector<float> y(n), dx(n);
    const std::string shape = std::to_string(kGeluRows) + "x" + std::to_string(kGeluCols);
    add("gelu_fwd", shape, 2.0 * n, [&] { cpu::gelu_forward(y.data(), x.data(), n); });
    add("gelu_bwd", shape, 3.0 * n, [&] { cpu::gelu_backward(dx.data(), x.data(), dout.data(), n); });
  }
  return figures;
}

// Runs the PyTorch script; returns GB/s by figure name (empty if torch is not available).
std::map<std::string, double> run_torch(int threads, const std::vector<Figure>& figures) {
  std::vector<std::string> args;
  for (int64_t v : {int64_t{threads}, int64_t{kWarmup}, int64_t{kRepeats}, kLnRows, kLnCols, kBatch, kHeads, kSeq,
                    kGeluRows, kGeluCols}) {
    args.push_back(std::to_string(v));
  }
  const auto seconds = bertforge::bench::run_torch_peer("bench_ops_torch.py", args);  // by figure name
  std::map<std::string, double> result;
  for (const Figure& f : figures) {
    const auto it = seconds.find(f.name);
    if (it != seconds.end() && it->second.size() == 1) result[f.name] = f.bytes / it->second[0] / 1e9;
  }
  return result;
}

}  // namespace

int main() {
  const int threads = omp_get_max_threads();
  std::printf("bench_ops: %d threads, median of %d after %d warm-up; GB/s = minimal bytes read + written / time\n",
              threads, kRepeats, kWarmup);
  std::printf("memory bandwidth (STREAM-like copy, 2 x 256 MiB): %.1f GB/s\n", copy_bandwidth());
  std::printf("dropout masks: Philox path %s (ops/cpu/philox_words.h)\n",
              bertforge::cpu::philox_isa_name(bertforge::cpu::philox_default_isa()));

  const std::vector<Figure> figures = run_bertforge();
  const std::map<std::string, double> torch = run_torch(threads, figures);  // after ours: no overlap
  if (torch.empty()) std::printf("torch: not installed (/usr/bin/python3 cannot import torch); bertforge only\n");
  for (const Figure& f : figures) {
    std::printf("%-25s %-11s bertforge %6.1f GB/s", f.name.c_str(), f.shape.c_str(), f.gbps);
    const auto it = torch.find(f.name);
    if (it != torch.end()) std::printf("  torch %6.1f GB/s  ratio %.2f", it->second, f.gbps / it->second);
    std::printf("\n");
  }
  return 0;
}
