// tests/bench/bench_quant_inference.cpp — BERT encoder inference throughput (tokens/s), FP32 against PTQ W8A8 with
// real int8 execution (quant/quantized_model.h, QuantizedExecution::kInt8), and against PyTorch FP32 and dynamic
// int8 inference of the same model, for all-MiniLM-L6-v2's shape (6 layers, hidden 384, 12 heads, FFN 1536) and
// BERT-base at T = 128, batch 8.
//
// What runs: the encoder only (embeddings, LayerNorm, every layer; no MLM head, which PTQ keeps FP and whose
// (rows, 30522) decoder would dominate small models), eval mode, no grad, on one synthetic batch (random ids,
// vocabulary 30522, no padding). Random weights (init_seed 1); PTQ W8A8 (weights int8 symmetric per tensor,
// activations 8-bit min-max) calibrated on 2 batches of random ids. Models, per preset:
//   fp32        BertForMaskedLM as trained
//   fake-quant  the W8A8 model as bert_eval computes it by default: dequantized FP32 weights, every tap point
//               fake-quantized
//   int8        the W8A8 model with the six encoder Linears per layer in int8 (int8 GEMM, best path of this CPU),
//               the other tap points fake-quantized: the same math as fake-quant, what bert_eval --int8 runs
//   int8-lin    the six Linears in int8 and no other quantization (no hook): what an int8 deployment of the
//               Linears computes, the fair throughput figure against FP32
//   fp32-deq    the fake-quant model with its hook removed: FP32 everywhere, with the dequantized weights, loaded
//               through load_state_dict (a control for fp32: same work, a model built the other way)
//   int8 a7,    int8 and int8-lin of PTQ W8A7 (activations quantized to 7 bits, calibrated alike), whose Linears
//   int8-lin a7 the AVX2 path runs with its faster 7-bit kernel (quant/int8_gemm.h)
//   tok         W8A8 with weights per channel and activations per token, computed at run time (linear_inputs
//               scope, dynamic: each row's own min/max, the int8 GEMM's per-row epilogue)
//   smooth      W8A8 with weights per channel and static per-tensor activations at the Linear inputs, after
//               SmoothQuant migration (alpha 0.5) folded into the model (quant/migration.h), which adds per-channel
//               multiplies on the two residuals and the GELU output
//   smooth+tok  the same with per-token activations: the recipe for real checkpoints (README.md)
// PyTorch (tests/bench/bench_quant_inference_torch.py, /usr/bin/python3, same thread count): the Hugging Face-style
// eager model of bench_train_torch.py, FP32, and with quantize_dynamic int8 Linears (the encoder parameter count is
// checked against bertforge's).
// Each figure: the median of REPEATS passes after WARMUP untimed ones, the bertforge models taking turns pass by
// pass (encode_seconds). Ratios are speedups: time(fp32) / time(x) and
// time(torch fp32) / time(x).
//
// Usage: bench_quant_inference [shape ...]   (default: minilm base; also tiny, mini)
// BENCH_QUANT_MODELS=tok,int8-lin (names as in the table) times fp32 and those alone, e.g. under a profiler.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "autograd/grad_mode.h"
#include "models/bert.h"
#include "quant/channel_fold.h"
#include "quant/group_statistics.h"
#include "quant/int8_gemm.h"
#include "quant/migration.h"
#include "quant/ptq.h"
#include "quant/quantized_model.h"
#include "tests/bench/bench_util.h"
#include "train/data_loader.h"
#include "train/token_shard.h"

namespace {

using namespace bertforge;

constexpr int kWarmup = 1;
constexpr int kRepeats = 3;          // at least; more for small models:
constexpr double kMinFp32Seconds = 2.0;  // timed rounds continue until FP32's passes add up to this
constexpr int kMaxRepeats = 25;
constexpr int64_t kSeqLen = 128;
constexpr int64_t kBatch = 8;
constexpr int64_t kCalibrationBatches = 2;

// Token ids uniform in [1000, V): the timed batch (B, T), and the calibration corpus written to a shard.
std::vector<int64_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> id(1000, vocab - 1);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t& v : ids) v = id(rng);
  return ids;
}

DataLoader calibration_loader(const std::string& shard, int64_t vocab) {
  ShardWriter writer;
  BF_CHECK(writer.open(shard, vocab).ok(), "cannot write ", shard);
  const std::vector<int64_t> ids = random_ids(kCalibrationBatches * kBatch * kSeqLen, vocab, 3);
  for (size_t start = 0; start < ids.size(); start += kSeqLen - 2) {  // one document per sequence
    const size_t end = std::min(ids.size(), start + kSeqLen - 2);
    std::vector<uint32_t> doc(ids.begin() + start, ids.begin() + end);
    BF_CHECK(writer.add_document(doc).ok(), "cannot write ", shard);
  }
  BF_CHECK(writer.close().ok(), "cannot write ", shard);
  DataLoaderOptions options;
  options.max_seq_len = kSeqLen;
  options.batch_size = kBatch;
  options.seed = 1;
  const MlmVocab mlm_vocab{vocab, /*pad=*/0, /*unk=*/100, /*cls=*/101, /*sep=*/102, /*mask=*/103};
  absl::StatusOr<DataLoader> loader = DataLoader::open({shard}, mlm_vocab, options);
  BF_CHECK(loader.ok(), loader.status().ToString());
  return std::move(*loader);
}

// Median seconds of one encoder pass of each model. The models take turns (one pass each per round), so a change
// in the machine's load (2 shared cores here) hits every model alike instead of whichever runs at that moment.
// Rounds: kWarmup untimed, then at least kRepeats, and more (up to kMaxRepeats) until the first model's timed
// passes add up to kMinFp32Seconds; *rounds is set to the timed ones.
std::vector<double> encode_seconds(const std::vector<const BertForMaskedLM*>& models, const Tensor& ids, int* rounds) {
  autograd::NoGradGuard no_grad;
  std::vector<std::vector<double>> seconds(models.size());
  double first_total = 0;
  for (int round = 0; round < kWarmup + kMaxRepeats; ++round) {
    const int timed = round - kWarmup;
    if (timed >= kRepeats && first_total >= kMinFp32Seconds) break;
    for (size_t m = 0; m < models.size(); ++m) {
      const bench::Timing t = bench::time_runs([&] { models[m]->encode(ids, Tensor(), Tensor()); }, 0, 1);
      if (timed < 0) continue;
      seconds[m].push_back(t.median);
      if (m == 0) first_total += t.median;
    }
  }
  *rounds = static_cast<int>(seconds[0].size());
  std::vector<double> medians;
  for (std::vector<double>& s : seconds) {
    std::sort(s.begin(), s.end());
    medians.push_back(s[s.size() / 2]);
  }
  return medians;
}

// A bertforge preset, or "minilm": all-MiniLM-L6-v2's shape.
absl::StatusOr<BertConfig> shape_config(const std::string& shape) {
  if (shape != "minilm") return BertConfig::preset(shape);
  BertConfig config = BertConfig::preset("base").value();
  config.num_hidden_layers = 6;
  config.hidden_size = 384;
  config.num_attention_heads = 12;
  config.intermediate_size = 1536;
  return config;
}

std::unique_ptr<BertForMaskedLM> build(const quant::PtqResult& ptq, const BertConfig& config,
                                       const quant::QuantizedBuildOptions& options) {
  absl::StatusOr<quant::QuantizedBert> q = quant::build_quantized_bert(ptq.state, config, ptq.activations, options);
  BF_CHECK(q.ok(), q.status().ToString());
  return std::move(q->model);
}

int run_preset(const std::string& preset, int threads) {
  const BertConfig config = shape_config(preset).value();
  BertForMaskedLM fp(config, /*init_seed=*/1);
  fp.eval();
  int64_t encoder_parameters = 0;
  for (const auto& [name, tensor] : fp.named_parameters()) {
    if (!absl::StartsWith(name, "cls.")) encoder_parameters += tensor.numel();
  }
  const std::string shard = (std::filesystem::temp_directory_path() /
                             ("bench_quant_inference_" + std::to_string(::getpid()) + ".zst")).string();
  // The seed's scheme (every tap point, per-tensor weights), or the Linear inputs with per-channel weights.
  enum Scheme { kAllTaps, kLinearInputsPerTensor, kLinearInputsPerToken };
  const auto calibrate = [&](const BertForMaskedLM& model, int activation_bits, Scheme scheme) {
    DataLoader loader = calibration_loader(shard, config.vocab_size);
    quant::PtqOptions options;
    options.calibration.batches = kCalibrationBatches;
    options.activation_bits = activation_bits;
    if (scheme != kAllTaps) {
      options.weights.granularity = quant::Granularity::kPerChannel;
      options.scope = quant::ActivationScope::kLinearInputs;
    }
    if (scheme == kLinearInputsPerToken) options.granularity = quant::ActivationGranularity::kPerToken;
    absl::StatusOr<quant::PtqResult> result = quant::quantize_ptq(model, loader, options);
    std::filesystem::remove(shard);
    BF_CHECK(result.ok(), result.status().ToString());
    return std::move(*result);
  };
  const std::optional<quant::PtqResult> ptq = calibrate(fp, 8, kAllTaps), ptq7 = calibrate(fp, 7, kAllTaps);
  const std::optional<quant::PtqResult> per_token = calibrate(fp, 8, kLinearInputsPerToken);
  const std::unique_ptr<BertForMaskedLM> smoothed = quant::clone_bert(fp);
  {
    DataLoader loader = calibration_loader(shard, config.vocab_size);
    quant::MigrationOptions smooth;
    smooth.method = quant::MigrationMethod::kSmooth;
    smooth.granularity = quant::ActivationGranularity::kPerToken;
    const absl::Status migrated =
        quant::migrate_outliers(*smoothed, quant::loader_batches(loader, kCalibrationBatches), smooth).status();
    std::filesystem::remove(shard);
    BF_CHECK(migrated.ok(), migrated.ToString());
  }
  const std::optional<quant::PtqResult> smoothed_per_tensor = calibrate(*smoothed, 8, kLinearInputsPerTensor);
  const std::optional<quant::PtqResult> smoothed_per_token = calibrate(*smoothed, 8, kLinearInputsPerToken);

  const Tensor ids = Tensor::from_vector(random_ids(kBatch * kSeqLen, config.vocab_size, 7), {kBatch, kSeqLen});
  const double tokens = static_cast<double>(kBatch * kSeqLen);
  struct Row {
    const char* name;
    double seconds;
  };
  const auto fake_quant = build(*ptq, config, {quant::QuantizedExecution::kFakeQuant});
  const auto int8 = build(*ptq, config, {quant::QuantizedExecution::kInt8, /*fake_quant_taps=*/true});
  const auto int8_linears = build(*ptq, config, {quant::QuantizedExecution::kInt8, /*fake_quant_taps=*/false});
  auto fp_dequantized = build(*ptq, config, {quant::QuantizedExecution::kFakeQuant});
  fp_dequantized->set_hook(nullptr);
  const auto int8_a7 = build(*ptq7, config, {quant::QuantizedExecution::kInt8, /*fake_quant_taps=*/true});
  const auto int8_linears_a7 = build(*ptq7, config, {quant::QuantizedExecution::kInt8, /*fake_quant_taps=*/false});
  const auto int8_per_token = build(*per_token, config, {quant::QuantizedExecution::kInt8});
  const auto int8_smoothed_per_tensor = build(*smoothed_per_tensor, config, {quant::QuantizedExecution::kInt8});
  const auto int8_smoothed_per_token = build(*smoothed_per_token, config, {quant::QuantizedExecution::kInt8});
  // fp32 always runs (the ratios' base); BENCH_QUANT_MODELS="tok,int8-lin" times only those others (profiling).
  const std::vector<std::pair<const char*, const BertForMaskedLM*>> candidates = {
      {"fp32", &fp},
      {"fake-quant", fake_quant.get()},
      {"int8", int8.get()},
      {"int8-lin", int8_linears.get()},
      {"fp32-deq", fp_dequantized.get()},
      {"int8 a7", int8_a7.get()},
      {"int8-lin a7", int8_linears_a7.get()},
      {"tok", int8_per_token.get()},
      {"smooth", int8_smoothed_per_tensor.get()},
      {"smooth+tok", int8_smoothed_per_token.get()}};
  const char* only = std::getenv("BENCH_QUANT_MODELS");
  std::vector<const BertForMaskedLM*> models;
  std::vector<Row> rows;
  for (const auto& [name, model] : candidates) {
    if (only != nullptr && *only != '\0' && models.size() > 0 &&
        ("," + std::string(only) + ",").find("," + std::string(name) + ",") == std::string::npos) {
      continue;
    }
    models.push_back(model);
    rows.push_back({name, 0.0});
  }
  int rounds = 0;
  const std::vector<double> seconds = encode_seconds(models, ids, &rounds);
  for (size_t i = 0; i < rows.size(); ++i) rows[i].seconds = seconds[i];

  const auto torch = bench::run_torch_peer("bench_quant_inference_torch.py",
                                           {std::to_string(threads), std::to_string(kWarmup),
                                            std::to_string(kRepeats), preset, std::to_string(kBatch),
                                            std::to_string(kSeqLen)});
  const auto torch_fp = torch.find("fp32_seconds"), torch_int8 = torch.find("dynamic_int8_seconds"),
             torch_parameters = torch.find("parameters");
  const bool have_torch = torch_fp != torch.end() && torch_int8 != torch.end() && torch_parameters != torch.end();
  if (have_torch && static_cast<int64_t>(torch_parameters->second[0]) != encoder_parameters) {
    std::printf("torch's encoder parameter count %.0f != bertforge's %lld\n", torch_parameters->second[0],
                static_cast<long long>(encoder_parameters));
    return 1;
  }
  if (have_torch) {
    rows.push_back({"torch fp32", torch_fp->second[0]});
    rows.push_back({"torch dyn-int8", torch_int8->second[0]});
  }
  std::printf("%s (B=%lld, T=%lld, %lld encoder parameters; median of %d passes per model)\n", preset.c_str(),
              static_cast<long long>(kBatch), static_cast<long long>(kSeqLen),
              static_cast<long long>(encoder_parameters), rounds);
  for (const Row& row : rows) {
    std::printf("  %-15s %8.0f tokens/s  %7.3f s   x%.2f vs fp32", row.name, tokens / row.seconds, row.seconds,
                rows[0].seconds / row.seconds);
    if (have_torch) {
      std::printf("   x%.2f vs torch fp32   x%.2f vs torch dyn-int8", torch_fp->second[0] / row.seconds,
                  torch_int8->second[0] / row.seconds);
    }
    std::printf("\n");
  }
  if (!have_torch) std::printf("  torch: not available\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> presets = {"minilm", "base"};
  if (argc > 1) presets.assign(argv + 1, argv + argc);
  for (const std::string& preset : presets) {
    if (!shape_config(preset).ok()) {
      std::fprintf(stderr, "bench_quant_inference: unknown shape '%s' (minilm, tiny, mini, base)\n", preset.c_str());
      return 2;
    }
  }
  const int threads = omp_get_max_threads();
  std::printf("bench_quant_inference: %s; %d threads, encoder only, eval, no grad; int8 GEMM path %s; %d warm-up "
              "pass, then the models take turns\n",
              bench::cpu_model().c_str(), threads, quant::int8_gemm_isa_name(quant::int8_gemm_best_isa()), kWarmup);
  for (const std::string& preset : presets) {
    if (const int rc = run_preset(preset, threads); rc != 0) return rc;
  }
  return 0;
}
