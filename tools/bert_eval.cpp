// bert_eval: validation perplexity and outlier metrics of a trained BERT (train/evaluation.h).
//
// The outlier metrics (train/outlier_metrics.h): the seed paper's avg/max kurtosis and three inf-norms, He et
// al.'s kurtosis of the per-neuron RMS (avg/max), and the attention-sink metrics (the share of heads putting at
// least 0.3 of their attention on [CLS]/[SEP], mean and max over layers, and the mean special-token mass); one
// line per layer follows with its sink share, special-token mass and RMS kurtoses. --json gives every summary and
// per-layer value.
//
//   bert_eval --checkpoint RUN/checkpoints/step-N | RUN | MODEL_DIR | model.safetensors --data DIR
//             [--config config.json] [--batches N] [--batch_size B] [--seq_len T] [--int8] [--json]
//             [--compare_to FP_CHECKPOINT] [--device cpu|cuda|cuda:N]
//
// DIR is what bert_prep writes (DIR/vocab.txt, DIR/validation/*.zst). A run directory RUN means its latest
// checkpoint; MODEL_DIR is a directory holding model.safetensors (a Hugging Face download, bert_quant's --out).
// The config defaults to a config.json beside the model file, else RUN/config.json, the one bert_train writes
// beside RUN/checkpoints/.
//
// A quantized checkpoint (bert_quant's output; quant/quantized_model.h) is recognised by its metadata and evaluated
// as the quantized model computes (weights dequantized, activations fake-quantized with its calibrated ranges); the
// table's first line names the scheme, --json gives it as "quantization" (null for an FP checkpoint). With --int8
// the six encoder Linears per layer run in integers (int8 GEMM; quant/quantized_model.h, QuantizedExecution::kInt8)
// and the other tap points stay fake-quantized, so the perplexity is comparable with the fake-quant one; a scheme
// without int8 execution (per_group or asymmetric weights, activations wider than 8 bits or FP) is an error.
//
// --compare_to REFERENCE (any checkpoint form, usually the FP model a quantized one was made from; its config.json
// beside it, else this model's) measures the evaluated model against it on the same validation batches, with the
// MLM masking undone (quant/reference_comparison.h): the final hidden state's SQNR (dB) and mean cosine over the
// real tokens (train/evaluation.h, as bert_quant reports them), and the encoder throughput of both in real tokens
// per second, timed the same way (each model warmed up on the first batch, then taking turns per batch). In the
// table after the outlier metrics; in --json as "compare_to" (null without the flag).
//
// --device cuda evaluates on a GPU (a build with the CUDA backend): the model, each batch, the fake quantization
// of a quantized checkpoint and, with --int8, its integer Linears (cuda/int8_linear.cu) run there.
//
// Any Hugging Face BERT layout loads (models/hf_checkpoint.h). An encoder-only checkpoint (a BertModel such as
// all-MiniLM-L6-v2; make DIR with bert_prep --vocab <its vocab.txt>) has no MLM head, so no perplexity: the
// table says so, --json gives "perplexity" and "val_loss" as null, and the outlier metrics are reported as
// for any model.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "models/bert.h"
#include "models/bert_config.h"
#include "ops/cpu/gemm.h"
#include "quant/fp_or_quantized_bert.h"
#include "quant/int8_gemm.h"
#include "quant/reference_comparison.h"
#include "train/checkpoint_paths.h"
#include "train/data_loader.h"
#include "train/evaluation.h"
#include "train/prepared_data.h"
#include "tools/tool_device.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, checkpoint, "", "a checkpoint directory, a run directory (its latest checkpoint) or a "
                                       "model.safetensors file");
ABSL_FLAG(std::string, config, "", "the model's config.json (default: beside the model file, else RUN/config.json)");
ABSL_FLAG(std::string, data, "", "data directory written by bert_prep (vocab.txt, validation/)");
ABSL_FLAG(int64_t, batches, 0, "validation batches to evaluate (0: all)");
ABSL_FLAG(int64_t, batch_size, 32, "sequences per batch");
ABSL_FLAG(int64_t, seq_len, 128, "tokens per sequence, [CLS] and [SEP] included");
ABSL_FLAG(uint64_t, seed, 0, "seed of the validation masking");
ABSL_FLAG(bool, int8, false, "a quantized checkpoint: run its encoder Linears with the int8 GEMM instead of "
                              "dequantized FP32 weights");
ABSL_FLAG(std::string, compare_to, "", "a reference checkpoint (usually the FP model of a quantized one): report "
                                       "the final hidden state's SQNR and cosine against it and both models' "
                                       "tokens/s on the same batches");
ABSL_FLAG(bool, json, false, "print one JSON object (with per-layer values) instead of a table");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N (needs a build with the CUDA backend)");

namespace bertforge {
namespace {

constexpr const char* kNoHead = "n/a: encoder-only checkpoint, perplexity needs an MLM head";

void print_table(const EvalResult& eval, bool clipped_softmax) {
  const PerplexityResult& p = eval.perplexity;
  const OutlierMetrics& o = eval.outliers;
  if (eval.has_perplexity) {
    std::printf("%-32s %12.4f\n", "validation loss", p.mean_loss);
    std::printf("%-32s %12.4f\n", "perplexity", p.perplexity);
  } else {
    std::printf("%-32s %s\n", "validation loss", kNoHead);
    std::printf("%-32s %s\n", "perplexity", kNoHead);
  }
  std::printf("%-32s %12.4f\n", "avg kurtosis", o.avg_kurtosis);
  std::printf("%-32s %12.4f\n", "max kurtosis", o.max_kurtosis);
  std::printf("%-32s %12.4f\n", "max FFN output inf-norm", o.max_ffn_output_inf_norm);
  std::printf("%-32s %12.4f\n", "max FFN input+output inf-norm", o.max_ffn_output_plus_residual_inf_norm);
  std::printf("%-32s %12.4f\n", "max LN(FFN i+o) inf-norm", o.max_layer_output_inf_norm);
  std::printf("%-32s %12.4f\n", "avg RMS kurtosis (He et al.)", o.avg_rms_kurtosis);
  std::printf("%-32s %12.4f\n", "max RMS kurtosis (He et al.)", o.max_rms_kurtosis);
  std::printf("%-32s %12.4f\n", "attention sink share", o.mean_sink_share);
  std::printf("%-32s %12.4f\n", "max attention sink share", o.max_sink_share);
  std::printf("%-32s %12.4f\n", "special-token attention mass", o.mean_special_token_mass);
  for (size_t i = 0; i < o.layers.size(); ++i) {
    const LayerOutlierMetrics& l = o.layers[i];
    std::printf("layer %zu: sink share %.4f, special-token mass %.4f, RMS kurtosis FFN out %.4f, layer out %.4f\n", i,
                l.sink_share, l.special_token_mass, l.ffn_output_rms_kurtosis, l.layer_output_rms_kurtosis);
  }
  if (clipped_softmax) {
    for (size_t i = 0; i < o.layers.size(); ++i) {
      const LayerOutlierMetrics& l = o.layers[i];
      std::printf("layer %zu attention: %.4f exactly 0, %.4f exactly 1, %.4f dead rows\n", i,
                  l.attention_zero_fraction, l.attention_one_fraction, l.attention_dead_row_fraction);
    }
  }
  if (eval.has_perplexity) {
    std::printf("(%lld masked tokens, %lld samples, %lld batches)\n", static_cast<long long>(p.scored_tokens),
                static_cast<long long>(o.samples), static_cast<long long>(p.batches));
  } else {
    std::printf("(%lld samples, %lld batches)\n", static_cast<long long>(o.samples),
                static_cast<long long>(p.batches));
  }
}

// The model of --compare_to, checked against the evaluated one's config before any work.
struct Reference {
  std::string weights;
  quant::FpOrQuantizedBert loaded;
};

absl::StatusOr<Reference> load_reference(const std::string& checkpoint, const BertConfig& config) {
  const auto flag_error = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("--compare_to ", checkpoint, ": ", s.message()));
  };
  absl::StatusOr<CheckpointPaths> paths = resolve_checkpoint_paths(checkpoint);
  if (!paths.ok()) return flag_error(paths.status());
  BertConfig reference_config = config;  // the evaluated model's, when the reference has no config.json
  if (absl::StatusOr<std::string> file = resolve_config_path(*paths, ""); file.ok()) {
    absl::StatusOr<BertConfig> loaded = BertConfig::load(*file);
    if (!loaded.ok()) return flag_error(loaded.status());
    if (absl::Status s = loaded->validate(); !s.ok()) return flag_error(s);
    reference_config = *loaded;
  }
  if (reference_config.hidden_size != config.hidden_size || reference_config.vocab_size != config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--compare_to ", checkpoint, ": hidden size ", reference_config.hidden_size, " and vocabulary ",
        reference_config.vocab_size, " differ from the evaluated model's ", config.hidden_size, " and ",
        config.vocab_size, ": not a version of the same model"));
  }
  Reference reference;
  reference.weights = paths->weights;
  absl::StatusOr<quant::FpOrQuantizedBert> loaded =
      quant::load_fp_or_quantized_bert(paths->weights, reference_config, /*int8=*/false);
  if (!loaded.ok()) return flag_error(loaded.status());
  reference.loaded = std::move(*loaded);
  return reference;
}

void print_comparison(const Reference& reference, const quant::ReferenceComparison& c) {
  std::printf("%-32s %12.2f dB SQNR, mean cosine %.6f\n", "hidden state vs reference", c.hidden.sqnr_db,
              c.hidden.mean_cosine);
  std::printf("%-32s %12.1f (reference %.1f: %.2fx)\n", "tokens/s (encoder)", c.model_tokens_per_s(),
              c.reference_tokens_per_s(), c.speedup());
  std::printf("(reference %s: %s; final hidden state over %lld real tokens of %lld batches, MLM masking undone; "
              "both models timed on the same batches, taking turns)\n",
              reference.weights.c_str(), reference.loaded.layout.c_str(), static_cast<long long>(c.hidden.tokens),
              static_cast<long long>(c.hidden.batches));
}

Json comparison_json(const Reference& reference, const quant::ReferenceComparison& c) {
  Json j = Json::object();
  j.set("checkpoint", reference.weights);
  j.set("layout", reference.loaded.layout);
  j.set("hidden_sqnr_db", c.hidden.sqnr_db);  // null when the two are identical (+inf)
  j.set("hidden_cosine", c.hidden.mean_cosine);
  j.set("hidden_tokens", c.hidden.tokens);
  j.set("batches", c.hidden.batches);
  j.set("tokens_per_s", c.model_tokens_per_s());
  j.set("reference_tokens_per_s", c.reference_tokens_per_s());
  j.set("speedup", c.speedup());
  return j;
}

absl::Status run() {
  const std::string data = absl::GetFlag(FLAGS_data);
  if (data.empty()) return absl::InvalidArgumentError("--data is required (see --help)");
  BF_ASSIGN_OR_RETURN(const CheckpointPaths paths, resolve_checkpoint_paths(absl::GetFlag(FLAGS_checkpoint)));
  BF_ASSIGN_OR_RETURN(const std::string config_file, resolve_config_path(paths, absl::GetFlag(FLAGS_config)));
  BF_ASSIGN_OR_RETURN(const BertConfig config, BertConfig::load(config_file));
  BF_RETURN_IF_ERROR(config.validate());
  BF_ASSIGN_OR_RETURN(const MlmVocab vocab, load_prepared_vocab(data, config.vocab_size));
  const int64_t seq_len = absl::GetFlag(FLAGS_seq_len);
  if (seq_len < 3 || seq_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("--seq_len must be in [3, ", config.max_position_embeddings, "], got ", seq_len));
  }
  if (absl::GetFlag(FLAGS_batch_size) < 1 || absl::GetFlag(FLAGS_batches) < 0) {
    return absl::InvalidArgumentError("--batch_size must be at least 1 and --batches non-negative");
  }

  BF_ASSIGN_OR_RETURN(const Device device, select_device(absl::GetFlag(FLAGS_device)));
  std::optional<Reference> reference;  // first: a wrong --compare_to fails before the evaluated model loads
  if (const std::string compare_to = absl::GetFlag(FLAGS_compare_to); !compare_to.empty()) {
    BF_ASSIGN_OR_RETURN(reference, load_reference(compare_to, config));
    reference->loaded.model->to(device);
  }
  BF_ASSIGN_OR_RETURN(const quant::FpOrQuantizedBert loaded,
                      quant::load_fp_or_quantized_bert(paths.weights, config, absl::GetFlag(FLAGS_int8)));
  loaded.model->to(device);  // batches follow the model (train/evaluation.h)

  DataLoaderOptions options;
  options.max_seq_len = seq_len;
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.shuffle = false;
  BF_ASSIGN_OR_RETURN(DataLoader loader, open_prepared_split(data, "validation", vocab, options));

  const EvalResult eval = evaluate(*loaded.model, loader, absl::GetFlag(FLAGS_batches));
  std::optional<quant::ReferenceComparison> comparison;  // on the same batches (evaluate rewound the loader)
  if (reference.has_value()) {
    comparison = quant::compare_with_reference(*reference->loaded.model, *loaded.model, loader,
                                               absl::GetFlag(FLAGS_batches));
  }
  // Which int8 kernels ran (quant/int8_gemm.h), for comparing figures across machines.
  const bool int8_on_cpu = absl::GetFlag(FLAGS_int8) && device.is_cpu();
  const char* int8_path = quant::int8_gemm_isa_name(quant::int8_gemm_best_isa());
  if (absl::GetFlag(FLAGS_json)) {
    Json out = eval.outliers.to_json();
    out.set("checkpoint", paths.weights);
    out.set("attention", attention_variant_name(config.attention));
    out.set("layout", loaded.layout);
    out.set("quantization", loaded.quantization.empty() ? Json() : Json(loaded.quantization));
    out.set("mlm_head", eval.has_perplexity);
    out.set("val_loss", eval.has_perplexity ? Json(eval.perplexity.mean_loss) : Json());
    out.set("perplexity", eval.has_perplexity ? Json(eval.perplexity.perplexity) : Json());
    out.set("scored_tokens", eval.perplexity.scored_tokens);
    out.set("batches", eval.perplexity.batches);
    out.set("compare_to", comparison.has_value() ? comparison_json(*reference, *comparison) : Json());
    out.set("int8_kernels", int8_on_cpu ? Json(int8_path) : Json());
    out.set("gemm_paths", device.is_cpu() ? Json(cpu::gemm_paths_summary()) : Json());
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%s: %s\n", paths.weights.c_str(), loaded.layout.c_str());
    if (device.is_cpu()) {
      std::printf("CPU GEMM paths: %s (BERTFORGE_GEMM_ISA forces one)\n", cpu::gemm_paths_summary().c_str());
    }
    if (int8_on_cpu) std::printf("int8 GEMM path: %s (BERTFORGE_INT8_ISA forces one)\n", int8_path);
    print_table(eval, config.attention == AttentionVariant::kClippedSoftmax);
    if (comparison.has_value()) print_comparison(*reference, *comparison);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace bertforge

int main(int argc, char** argv) {
  const char* usage = "perplexity and outlier metrics of a BERT checkpoint; see --help";
  if (!bertforge::parse_tool_flags("bert_eval", usage, argc, argv)) return 2;
  return bertforge::run_tool("bert_eval", bertforge::run);
}
