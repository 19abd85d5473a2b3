// tests/bench/bench_train.cpp — BERT MLM training throughput (tokens/s) for the tiny, mini and base presets at
// sequence length 128, next to PyTorch training the same model on the same batch shape in the same run.
//
// A training step is what bert_train does per optimizer step: forward with dropout 0.1 and the MLM loss
// (BertForMaskedLM::mlm_loss: the head runs at the labelled positions only), backward, global gradient-norm
// clipping at 1.0 and an AdamW update. The batch is synthetic: random token ids (vocabulary 30522, BERT's), no
// padding, 15% of the positions labelled. Each figure: WARMUP untimed steps, then the median of REPEATS timed
// steps. PyTorch (tests/bench/bench_train_torch.py, /usr/bin/python3) builds the same architecture the way
// Hugging Face's BertForMaskedLM computes it in eager mode (the same parameter count is checked), with
// torch.optim.AdamW and clip_grad_norm_, and the same thread count, twice: with the head at every position as
// Hugging Face runs it ("torch HF"), and with the head on the labelled rows only, as bertforge ("torch same").
//
// Usage: bench_train [--device cuda] [--mixed_precision bf16|fp16] [preset ...]
//        (default: tiny mini base; on a GPU mini and base)
// Output: per preset, bertforge's tokens/s and peak memory, then each torch variant's tokens/s and the ratio
// bertforge/torch. Peak memory: the most bytes held during the timed steps (CPU: the host allocator's live
// bytes; GPU: the caching allocator's), and how much of it is above what stays between steps (parameters,
// gradients, optimizer state): the activations kept for backward, and temporaries.
// --device cuda (a build with the CUDA backend): both train on GPU 0, FP32 (cuBLAS FP32 GEMMs, torch with TF32
// off), each step ending when the GPU has finished it; the peer's Python is $BERTFORGE_BENCH_PYTHON (bench_util.h).
// --mixed_precision: bertforge's forward under an AutocastGuard (ops/autocast.h), torch's under torch.autocast of
// the same type (fp16 with a GradScaler) on a GPU. On a CPU the bf16 peer (torch.autocast("cpu", torch.bfloat16))
// runs where the CPU has AVX512-BF16, whose bf16 matmuls torch 1.13 hands to oneDNN; elsewhere its 16-bit CPU
// matmuls run at 1-5 GFLOP/s (an AVX2 machine, see bench_gemm) and it has no CPU fp16 autocast, so no peer is run.
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/engine.h"
#include "core/host_allocator.h"
#include "core/philox.h"
#include "models/bert.h"
#include "ops/autocast.h"
#include "tests/bench/bench_util.h"
#include "train/optimizer.h"
#include "train/trainer.h"
#ifdef BERTFORGE_CUDA
#include "cuda/device.h"
#endif

namespace {

using bertforge::BertConfig;
using bertforge::BertForMaskedLM;
using bertforge::Tensor;

constexpr int kWarmup = 2;
constexpr int kRepeats = 5;
constexpr int64_t kSeqLen = 128;
constexpr float kLabelledFraction = 0.15f;

struct Preset {
  std::string name;
  int64_t batch;  // sequences per step
};

// Deterministic synthetic MLM batch: ids uniform in [1000, V), 15% of the positions labelled with their id.
struct Batch {
  Tensor input_ids, labels;  // int64 (B, T)
};

Batch make_batch(int64_t batch, int64_t vocab) {
  std::vector<int64_t> ids(batch * kSeqLen), labels(batch * kSeqLen, -100);
  for (int64_t i = 0; i < batch * kSeqLen; ++i) {
    ids[i] = 1000 + static_cast<int64_t>(bertforge::philox_uniform(7, 0, 2 * i) * static_cast<float>(vocab - 1000));
    if (ids[i] >= vocab) ids[i] = vocab - 1;
    if (bertforge::philox_uniform(7, 0, 2 * i + 1) < kLabelledFraction) labels[i] = ids[i];
  }
  return {Tensor::from_vector(ids, {batch, kSeqLen}), Tensor::from_vector(labels, {batch, kSeqLen})};
}

// Seconds per training step (median), the parameter count, and the memory of a step.
struct Measured {
  double seconds = 0.0;
  int64_t parameters = 0;
  int64_t peak_bytes = 0;     // the most held during the timed steps
  int64_t between_steps = 0;  // held after the last step: parameters, gradients, optimizer state
};

void reset_peak_memory(bertforge::Device device) {
  if (device.is_cpu()) return bertforge::host_allocator().reset_peak();
#ifdef BERTFORGE_CUDA
  bertforge::cuda::reset_peak_allocated(device.index);
#endif
}

// {peak, now} in bytes on `device`.
std::pair<int64_t, int64_t> memory(bertforge::Device device) {
  if (device.is_cpu()) {
    const bertforge::HostAllocator::Stats stats = bertforge::host_allocator().stats();
    return {stats.peak_live_bytes, stats.live_bytes};
  }
#ifdef BERTFORGE_CUDA
  const bertforge::cuda::AllocatorStats stats = bertforge::cuda::allocator_stats(device.index);
  return {static_cast<int64_t>(stats.peak_allocated_bytes), static_cast<int64_t>(stats.allocated_bytes)};
#else
  return {0, 0};
#endif
}

Measured run_bertforge(const BertConfig& config, int64_t batch_size, bertforge::Device device,
                       bertforge::DType mixed_precision) {
  BertForMaskedLM model(config, /*init_seed=*/1);
  model.to(device);
  model.train();
  bertforge::OptimizerConfig optimizer_config;
  bertforge::AdamWOptimizer optimizer(model.named_parameters(), optimizer_config);
  const Batch host_batch = make_batch(batch_size, config.vocab_size);
  const Batch batch{host_batch.input_ids.to(device), host_batch.labels.to(device)};
  const Tensor last_parameter = model.named_parameters().back().second;
  uint64_t step = 0;
  reset_peak_memory(device);
  const bertforge::bench::Timing timing = bertforge::bench::time_runs(
      [&] {
        const bertforge::DropoutContext dropout{/*seed=*/1, ++step, /*rank=*/0, /*micro_step=*/0};
        Tensor loss;
        {
          const bertforge::AutocastGuard guard(mixed_precision);
          loss = model.mlm_loss(batch.input_ids, Tensor(), Tensor(), batch.labels, dropout);
        }
        bertforge::autograd::backward(loss);
        loss = Tensor();
        optimizer.step(1e-4f);
        // Reading the last parameter updated waits for the GPU's queue to drain (one stream).
        if (!device.is_cpu()) last_parameter.to(bertforge::Device::cpu());
      },
      kWarmup, kRepeats);
  const auto [peak, between_steps] = memory(device);
  int64_t parameters = 0;
  for (const auto& [name, tensor] : model.named_parameters()) parameters += tensor.numel();
  return {timing.median, parameters, peak, between_steps};
}

// Whether torch's bf16 CPU matmuls have oneDNN's AVX512-BF16 kernels to run on.
bool cpu_has_avx512_bf16() { return __builtin_cpu_supports("avx512bf16"); }

}  // namespace

int main(int argc, char** argv) {
  bertforge::Device device = bertforge::Device::cpu();
  std::string mixed_precision = "none";
  std::vector<std::string> preset_args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--device" || arg == "--mixed_precision") && i + 1 < argc) {
      if (arg == "--device") {
        device = bertforge::parse_device(argv[++i]).value();
      } else {
        mixed_precision = argv[++i];
      }
    } else {
      preset_args.push_back(arg);
    }
  }
  const absl::StatusOr<bertforge::DType> mixed_dtype = bertforge::parse_mixed_precision(mixed_precision);
  if (!mixed_dtype.ok()) {
    std::fprintf(stderr, "bench_train: %s\n", std::string(mixed_dtype.status().message()).c_str());
    return 2;
  }
  std::vector<Preset> presets = {{"tiny", 32}, {"mini", 32}, {"base", 8}};
  if (!device.is_cpu()) {
#ifdef BERTFORGE_CUDA
    bertforge::cuda::register_cuda_backend();
    if (bertforge::cuda::device_count() == 0) {
      std::fprintf(stderr, "bench_train: --device %s but no CUDA device\n", device.str().c_str());
      return 2;
    }
#else
    std::fprintf(stderr, "bench_train: built without the CUDA backend\n");
    return 2;
#endif
    presets = {{"mini", 128}, {"base", 32}};
  }
  if (!preset_args.empty()) {
    std::vector<Preset> chosen;
    for (const std::string& name : preset_args) {
      bool found = false;
      for (const Preset& p : presets) {
        if (p.name == name) chosen.push_back(p), found = true;
      }
      if (!found && !device.is_cpu() && name == "tiny") chosen.push_back({"tiny", 128}), found = true;
      if (!found) {
        std::fprintf(stderr, "bench_train: unknown preset '%s' (tiny, mini, base)\n", name.c_str());
        return 2;
      }
    }
    presets = chosen;
  }
  const int threads = omp_get_max_threads();
  std::printf("bench_train: %s, %d threads, T = %lld, vocab 30522, dropout 0.1, AdamW + clipping, mixed precision "
              "%s; median of %d steps after %d warm-up\n",
              device.str().c_str(), threads, static_cast<long long>(kSeqLen), mixed_precision.c_str(), kRepeats,
              kWarmup);
  for (const Preset& preset : presets) {
    const BertConfig config = BertConfig::preset(preset.name).value();
    const Measured ours = run_bertforge(config, preset.batch, device, *mixed_dtype);
    const double tokens = static_cast<double>(preset.batch * kSeqLen);
    const double mib = 1024.0 * 1024.0;
    std::printf("%-5s B=%-3lld bertforge %7.0f tokens/s (%.3f s/step, peak %.0f MiB, %.0f MiB above between-steps)",
                preset.name.c_str(), static_cast<long long>(preset.batch), tokens / ours.seconds, ours.seconds,
                ours.peak_bytes / mib, (ours.peak_bytes - ours.between_steps) / mib);
    std::fflush(stdout);
    if (device.is_cpu() && mixed_precision != "none" && !(mixed_precision == "bf16" && cpu_has_avx512_bf16())) {
      std::printf("  torch: not run (%s)\n", mixed_precision == "bf16"
                                                 ? "no AVX512-BF16 here: its bf16 CPU matmuls run at 1-5 GFLOP/s"
                                                 : "torch has no fp16 autocast on a CPU");
      continue;
    }
    for (const char* head_rows : {"all", "labelled"}) {
      const auto torch = bertforge::bench::run_torch_peer(
          "bench_train_torch.py", {std::to_string(threads), std::to_string(kWarmup), std::to_string(kRepeats),
                                   preset.name, std::to_string(preset.batch), std::to_string(kSeqLen), head_rows,
                                   device.is_cpu() ? "cpu" : "cuda", mixed_precision});
      const auto seconds = torch.find("step_seconds"), parameters = torch.find("parameters");
      if (seconds == torch.end() || parameters == torch.end()) {
        std::printf("  torch: not available");
        break;
      }
      if (static_cast<int64_t>(parameters->second[0]) != ours.parameters) {
        std::printf("\ntorch's parameter count %.0f != bertforge's %lld\n", parameters->second[0],
                    static_cast<long long>(ours.parameters));
        return 1;
      }
      std::printf("  torch %s %7.0f tokens/s ratio %.2f", head_rows[0] == 'a' ? "HF  " : "same",
                  tokens / seconds->second[0], seconds->second[0] / ours.seconds);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  return 0;
}
