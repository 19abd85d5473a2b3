// bert_quant: post-training quantization of a trained BERT (PTQ W8A8, quant/ptq.h, or AWQ weight-only,
// quant/awq.h) and its report.
//
//   bert_quant --checkpoint RUN | RUN/checkpoints/step-N | MODEL_DIR | model.safetensors --data DIR --out OUT
//              [--overwrite] [--warn_sqnr_db 20] [--method ptq|awq] [--weight_bits 8]
//              [--granularity per_tensor|per_channel|per_group] [--group_size 128]
//              [--activation_bits 8 (0: FP activations)] [--observer minmax|running_minmax|percentile|mse]
//              [--activation_exclude POINT,...] [--activation_scope all_taps|linear_inputs]
//              [--activation_granularity per_tensor|per_token] [--migration none|smooth|gamma]
//              [--migration_alpha 0.5|search] [--clipping none|tokenwise]
//              [--calibration_batches 16] [--eval_batches 50] [--batch_size 32] [--seq_len 128] [--json]
//
// DIR is what bert_prep writes: calibration batches come from DIR/train (shuffled by --seed), perplexity from
// DIR/validation. --checkpoint and --config resolve as for bert_eval (train/checkpoint_paths.h).
//
// OUT is a directory, made self-contained (quant/quantized_model_dir.h): OUT/model.safetensors (the quantized
// weights), OUT/model.activations.json (the activation ranges; quant/quantized_model.h), OUT/config.json,
// OUT/vocab.txt (the checkpoint's vocab.txt, beside the model or its run's, else DIR/vocab.txt, which calibration
// tokenized with) and OUT/quant_report.json (the --json report), so `bert_eval --checkpoint OUT`,
// `bert_embed --checkpoint OUT` and friends take it as it is. OUT is checked before any work: a path ending in
// .safetensors (the old meaning of --out), an existing file, or a place that cannot be written is an error; a new
// or empty directory, or a previous bert_quant output (replaced), is written; any other non-empty directory needs
// --overwrite (bert_quant's files in it are replaced, the others left). The files are staged inside OUT and moved
// into place once the model has been written and evaluated, so a failed run leaves OUT as it was.
//
// Prints progress lines (to stderr), then the report: per quantized weight its scheme and SQNR (dB), per tap
// point its calibrated range and quantization parameters, the model file size before and after, the FP and
// quantized (fake-quant) validation perplexity, the latter of the model read back from the written file, and how
// close that model's final hidden state is to the FP model's on the same validation batches with the MLM masking
// undone (SQNR in dB and mean cosine similarity over real tokens; train/evaluation.h compare_hidden_states).
// When that SQNR (or the int8-executed one) is below --warn_sqnr_db (20 dB), a warning goes to stderr and into
// the report's "warnings": the model has lost the FP hidden state (naive W8A8 of all-MiniLM-L6-v2 keeps about
// 2 dB), with the fix to try: for quantized activations, README.md's "W8A8 that survives a real BERT" recipe.
// An encoder-only checkpoint (no MLM head, e.g. all-MiniLM-L6-v2) is quantized the same way; it has no
// perplexity ("n/a"; null in --json), so the hidden-state agreement is its measure. When the written scheme can run
// in integers (weights symmetric per tensor or per channel, at most 8-bit activations) the file is also executed
// by the int8 kernels (quant/quantized_model.h kInt8) and its hidden state compared with FP: int8_hidden_sqnr_db.
//
// For real checkpoints, whose Linear inputs carry outliers (README.md "W8A8 that survives a real BERT": the recipe):
// --activation_scope linear_inputs quantizes only what the int8 kernels quantize (the six encoder Linears' inputs;
// all_taps, the default, is the seed's every-tap-point scheme); --activation_granularity per_token quantizes each
// token with its own range at run time (linear_inputs only); --migration smooth|gamma folds per-channel scales into
// the model first (quant/migration.h; --migration_alpha: SmoothQuant's alpha, or "search" per group by output
// error); --clipping tokenwise chooses each Linear input's static range by seed 003's token-wise clipping
// (quant/tokenwise_clipping.h; linear_inputs and per_tensor only).
// --method awq: weight-only (activations stay FP; --activation_bits, --observer and --granularity are not used),
// asymmetric per_group(--group_size) weights of --weight_bits bits, scales and clip ratios searched on
// --calibration_batches training batches (at most --awq_max_samples tokens kept per Linear input). Its report:
// per Linear how its scale is folded ("value", "gelu*1/s", or "unscaled" for the LayerNorm-fed query/key/value and
// intermediate.dense), the chosen alpha, the clip ratios' min/mean/max, and the calibration output MSE of
// round-to-nearest and of AWQ; then the FP, RTN (same scheme) and AWQ perplexities and the RTN and AWQ
// hidden-state agreement with FP.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/check.h"
#include "core/file_io.h"
#include "models/bert.h"
#include "models/bert_config.h"
#include "models/hf_checkpoint.h"
#include "quant/awq.h"
#include "quant/channel_fold.h"
#include "quant/group_statistics.h"
#include "quant/migration.h"
#include "quant/ptq.h"
#include "quant/quantized_model.h"
#include "quant/quantized_model_dir.h"
#include "train/checkpoint_paths.h"
#include "train/embedding_io.h"
#include "train/evaluation.h"
#include "train/prepared_data.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, checkpoint, "", "the FP model: a checkpoint directory, a run directory (its latest "
                                       "checkpoint) or a model.safetensors file");
ABSL_FLAG(std::string, config, "", "the model's config.json (default: beside the model file, else RUN/config.json)");
ABSL_FLAG(std::string, data, "", "data directory written by bert_prep (vocab.txt, train/, validation/)");
ABSL_FLAG(std::string, out, "", "output directory: model.safetensors, model.activations.json, config.json, "
                                "vocab.txt and quant_report.json go into it");
ABSL_FLAG(bool, overwrite, false, "write into a non-empty --out that holds no bert_quant output (its other files "
                                  "are left; bert_quant's are replaced)");
ABSL_FLAG(double, warn_sqnr_db, 20.0, "warn when the quantized model's final hidden-state SQNR against FP is below "
                                      "this (dB; -inf: never)");
ABSL_FLAG(std::string, method, "ptq", "ptq (W8A8 post-training quantization) or awq (weight-only AWQ)");
ABSL_FLAG(int32_t, weight_bits, 8, "weight bit width, 2..8 (symmetric for ptq, asymmetric for awq)");
ABSL_FLAG(std::string, granularity, "per_tensor", "weight scales: per_tensor, per_channel or per_group");
ABSL_FLAG(int64_t, group_size, 128, "input channels per scale with --granularity per_group, and for awq");
ABSL_FLAG(int64_t, awq_max_samples, 4096, "awq: calibration tokens kept per Linear input for the MSE searches");
ABSL_FLAG(int32_t, activation_bits, 8, "activation bit width, 2..16 (asymmetric, per tensor); 0 keeps them FP");
ABSL_FLAG(std::vector<std::string>, activation_exclude, {},
          "tap points whose activations stay FP: a point of every layer (ffn_output) or one site (layer.0.gelu)");
ABSL_FLAG(std::string, activation_scope, "all_taps",
          "which activations are quantized: all_taps (every tap point, the seed's scheme) or linear_inputs (only "
          "the encoder Linears' inputs, as int8 kernels execute them)");
ABSL_FLAG(std::string, activation_granularity, "per_tensor",
          "per_tensor (static, calibrated ranges) or per_token (dynamic: each token's own range; linear_inputs)");
ABSL_FLAG(std::string, migration, "none",
          "fold per-channel scales into the model before quantizing: none, smooth (SmoothQuant) or gamma (Outlier "
          "Suppression's gamma migration)");
ABSL_FLAG(std::string, migration_alpha, "0.5",
          "--migration smooth: the migration strength in [0, 1], or \"search\" (per group, by output error)");
ABSL_FLAG(std::string, clipping, "none",
          "static ranges of the Linear inputs: none (the observer's) or tokenwise (seed 003's token-wise "
          "clipping; linear_inputs, per_tensor)");
ABSL_FLAG(std::string, observer, "minmax", "activation range observer: minmax, running_minmax, percentile or mse");
ABSL_FLAG(int64_t, calibration_batches, 16, "training batches the activation ranges are calibrated on");
ABSL_FLAG(int64_t, eval_batches, 50, "validation batches for the perplexities and hidden states (0: all)");
ABSL_FLAG(int64_t, batch_size, 32, "sequences per batch (calibration and evaluation)");
ABSL_FLAG(int64_t, seq_len, 128, "tokens per sequence, [CLS] and [SEP] included");
ABSL_FLAG(uint64_t, seed, 0, "seed of the calibration shuffle and of the masking");
ABSL_FLAG(bool, json, false, "print one JSON object instead of the report tables");

namespace bertforge {
namespace {

void progress(const std::string& line) {
  std::fprintf(stderr, "bert_quant: %s\n", line.c_str());
  std::fflush(stderr);
}

absl::StatusOr<quant::PtqOptions> ptq_options() {
  quant::PtqOptions options;
  options.weights.bits = absl::GetFlag(FLAGS_weight_bits);
  BF_ASSIGN_OR_RETURN(options.weights.granularity, quant::granularity_from_name(absl::GetFlag(FLAGS_granularity)));
  options.weights.group_size = absl::GetFlag(FLAGS_group_size);
  if (absl::Status s = options.weights.validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--weight_bits / --granularity / --group_size: ", s.message()));
  }
  options.activation_bits = absl::GetFlag(FLAGS_activation_bits);
  options.exclude = absl::GetFlag(FLAGS_activation_exclude);
  BF_ASSIGN_OR_RETURN(options.calibration.observer.kind, parse_observer_kind(absl::GetFlag(FLAGS_observer)));
  options.calibration.batches = absl::GetFlag(FLAGS_calibration_batches);
  const auto flag_error = [](const char* flag, const absl::Status& s) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", s.message()));
  };
  absl::StatusOr<quant::ActivationScope> scope = quant::parse_activation_scope(absl::GetFlag(FLAGS_activation_scope));
  if (!scope.ok()) return flag_error("--activation_scope", scope.status());
  options.scope = *scope;
  absl::StatusOr<quant::ActivationGranularity> granularity =
      quant::parse_activation_granularity(absl::GetFlag(FLAGS_activation_granularity));
  if (!granularity.ok()) return flag_error("--activation_granularity", granularity.status());
  options.granularity = *granularity;
  absl::StatusOr<quant::ActivationClipping> clipping = quant::parse_activation_clipping(absl::GetFlag(FLAGS_clipping));
  if (!clipping.ok()) return flag_error("--clipping", clipping.status());
  options.clipping = *clipping;
  options.seed = absl::GetFlag(FLAGS_seed);
  if (absl::Status s = options.validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--activation_bits / --activation_scope / --activation_granularity / --activation_exclude / --clipping / "
        "--calibration_batches: ", s.message()));
  }
  return options;
}

absl::StatusOr<quant::MigrationOptions> migration_options(const quant::PtqOptions& ptq) {
  quant::MigrationOptions options;
  absl::StatusOr<quant::MigrationMethod> method = quant::parse_migration_method(absl::GetFlag(FLAGS_migration));
  if (!method.ok()) return absl::InvalidArgumentError(absl::StrCat("--migration: ", method.status().message()));
  options.method = *method;
  const std::string alpha = absl::GetFlag(FLAGS_migration_alpha);
  if (alpha == "search") {
    options.search_alpha = true;
  } else if (!absl::SimpleAtod(alpha, &options.alpha)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--migration_alpha must be a number in [0, 1] or \"search\", got \"", alpha, "\""));
  }
  if (options.method == quant::MigrationMethod::kNone) return options;
  if (ptq.activation_bits == 0 || ptq.activation_bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("--migration moves outliers out of quantized activations: it "
                                                   "needs --activation_bits in [2, 8], got ",
                                                   ptq.activation_bits));
  }
  options.weights = ptq.weights;
  options.activation_bits = ptq.activation_bits;
  options.granularity = ptq.granularity;
  options.seed = ptq.seed;
  if (absl::Status s = options.validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--migration_alpha: ", s.message()));
  }
  return options;
}

absl::StatusOr<quant::AwqOptions> awq_options() {
  quant::AwqOptions options;
  options.weights = quant::int4_per_group(absl::GetFlag(FLAGS_group_size), /*symmetric=*/false);
  options.weights.bits = absl::GetFlag(FLAGS_weight_bits);
  options.calibration_batches = absl::GetFlag(FLAGS_calibration_batches);
  options.max_samples = absl::GetFlag(FLAGS_awq_max_samples);
  options.seed = absl::GetFlag(FLAGS_seed);
  if (absl::Status s = options.validate(); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--weight_bits / --group_size / --calibration_batches / --awq_max_samples: ", s.message()));
  }
  return options;
}

// "bert.encoder.layer.0.attention.self.query.weight" -> "layer.0.attention.self.query".
std::string short_weight_name(absl::string_view name) {
  absl::ConsumePrefix(&name, "bert.encoder.");
  absl::ConsumeSuffix(&name, ".weight");
  return std::string(name);
}

struct Report {
  bool awq = false;
  quant::MigrationResult migration;  // --migration smooth|gamma
  std::string migration_method = "none";
  quant::PtqResult ptq;    // --method ptq
  quant::AwqResult awq_result;  // --method awq
  PerplexityResult rtn;    // --method awq: round-to-nearest with the same scheme
  HiddenStateAgreement rtn_hidden;  // --method awq: RTN's final hidden state against FP's
  std::string scheme;            // QuantizedBert::describe
  int64_t fp_bytes = 0, quantized_bytes = 0;
  bool has_perplexity = true;  // false for an encoder-only model
  PerplexityResult fp, quantized;
  HiddenStateAgreement hidden;  // the quantized model's final hidden state against FP's
  std::optional<HiddenStateAgreement> int8_hidden;  // the written file executed by the int8 kernels, against FP
  std::string int8_unavailable;                    // why not, when int8_hidden is empty
  int64_t num_layers = 0;
  std::string vocab;                  // the vocab.txt copied into --out
  double warn_sqnr_db = 0;            // --warn_sqnr_db
  std::vector<std::string> warnings;  // printed to stderr, and in the JSON report
};

void print_ptq_tables(const Report& r);

// What absorbs an AWQ-scaled Linear's 1/s ("layernorm", "value", "gelu*1/s"), or "unscaled".
const char* awq_scaled_name(const quant::AwqLinearReport& w) {
  return w.alpha > 0 ? quant::fold_group_producer(w.group) : "unscaled";
}

// "layer.0 qkv" for a group of a layer.
std::string group_label(int64_t layer, quant::FoldGroup group) {
  return absl::StrCat("layer.", layer, " ", quant::fold_group_name(group));
}

void print_migration_table(const Report& r) {
  std::printf("%-24s %-9s %5s %19s %15s %23s\n", ("migration (" + r.migration_method + ")").c_str(), "into",
              "alpha", "max|x| before/after", "max/median", "output error before/after");
  for (const quant::MigrationGroupReport& g : r.migration.groups) {
    std::printf("%-24s %-9s %5s %9.3f/%-9.3f %6.1f/%-8.1f %11.4e/%-11.4e\n", group_label(g.layer, g.group).c_str(),
                g.migrated ? quant::fold_group_producer(g.group) : "-",
                g.migrated && r.migration_method == "smooth" ? absl::StrFormat("%.2f", g.alpha).c_str() : "-",
                g.input_max_before, g.input_max_after, g.outlier_ratio_before, g.outlier_ratio_after, g.error_before,
                g.error_after);
  }
  std::printf("(statistics of %lld calibration tokens; output error of the group's Linears on a sample of them, "
              "weights and activations fake-quantized as the scheme says)\n\n",
              static_cast<long long>(r.migration.calibration_tokens));
}

void print_clipping_table(const Report& r) {
  std::printf("\n%-32s %21s %21s %8s %23s\n", "token-wise clipping", "min-max range", "clipped range", "quantile",
              "output error min-max/clipped");
  for (const quant::ClippingReport& c : r.ptq.clipping) {
    const quant::TokenwiseClippingResult& t = c.result;
    std::printf("%-32s [%8.3f, %8.3f] [%8.3f, %8.3f] %8.4f %11.4e/%-11.4e\n", c.site.c_str(), t.minmax_range.min,
                t.minmax_range.max, t.range.min, t.range.max, t.coarse_quantile, t.minmax_error, t.fine_error);
  }
}

void print_awq_table(const Report& r) {
  std::printf("%-44s %-10s %-9s %5s %15s %11s %11s %7s\n", "weight (AWQ)", "shape", "scaled", "alpha",
              "clip min/mean/max", "MSE RTN", "MSE AWQ", "ratio");
  for (const quant::AwqLinearReport& w : r.awq_result.linears) {
    std::printf("%-44s %-10s %-9s %5.2f %4.2f/%4.2f/%4.2f %11.4e %11.4e %7.3f\n", short_weight_name(w.name).c_str(),
                absl::StrCat(w.rows, "x", w.cols).c_str(), awq_scaled_name(w), w.alpha, w.clip_min,
                w.clip_mean, w.clip_max, w.rtn_mse, w.awq_mse, w.rtn_mse > 0 ? w.awq_mse / w.rtn_mse : 1.0);
  }
  std::printf("(output MSE per element on %lld calibration tokens sampled of %lld; \"scaled\": what absorbs 1/s, "
              "query/key/value share one scale)\n",
              static_cast<long long>(r.awq_result.linears.empty() ? 0 : r.awq_result.linears.front().samples),
              static_cast<long long>(r.awq_result.calibration_tokens));
}

void print_hidden(const char* label, const HiddenStateAgreement& h) {
  std::printf("%-32s %12.2f dB SQNR, mean cosine %.6f\n", label, h.sqnr_db, h.mean_cosine);
}

void print_report(const Report& r) {
  if (r.migration_method != "none") print_migration_table(r);
  if (r.awq) {
    print_awq_table(r);
    std::printf("\nactivations: FP (AWQ is weight-only)\n");
  } else {
    print_ptq_tables(r);
  }
  std::printf("\nscheme: %s\n", r.scheme.c_str());
  std::printf("%-32s %12.3f MB -> %.3f MB (%.2fx smaller)\n", "model size", r.fp_bytes / 1e6,
              r.quantized_bytes / 1e6, static_cast<double>(r.fp_bytes) / static_cast<double>(r.quantized_bytes));
  if (r.has_perplexity) {
    std::printf("%-32s %12.4f\n", "FP perplexity", r.fp.perplexity);
    if (r.awq) {
      std::printf("%-32s %12.4f (%+.2f%%)\n", "RTN perplexity", r.rtn.perplexity,
                  100.0 * (r.rtn.perplexity / r.fp.perplexity - 1.0));
    }
    std::printf("%-32s %12.4f (%+.2f%%)\n", "quantized perplexity", r.quantized.perplexity,
                100.0 * (r.quantized.perplexity / r.fp.perplexity - 1.0));
    std::printf("(%lld masked tokens, %lld validation batches)\n", static_cast<long long>(r.fp.scored_tokens),
                static_cast<long long>(r.fp.batches));
  } else {
    std::printf("%-32s %12s (encoder-only model: no MLM head)\n", "perplexity", "n/a");
  }
  if (r.awq) print_hidden("RTN hidden state vs FP", r.rtn_hidden);
  print_hidden("quantized hidden state vs FP", r.hidden);
  if (r.int8_hidden.has_value()) {
    print_hidden("int8-executed hidden state vs FP", *r.int8_hidden);
  } else {
    std::printf("%-32s %12s (%s)\n", "int8-executed hidden state", "n/a", r.int8_unavailable.c_str());
  }
  std::printf("(final hidden state over %lld real tokens of %lld validation batches, MLM masking undone)\n",
              static_cast<long long>(r.hidden.tokens), static_cast<long long>(r.hidden.batches));
}

// Whether `site` is the input of one of the six encoder Linears of a layer (quant/group_statistics.h).
bool is_linear_input(const TapSite& site, int64_t num_layers) {
  for (int64_t l = 0; l < num_layers; ++l) {
    for (quant::FoldGroup group : quant::kFoldGroups) {
      if (quant::group_input_site(l, group).index() == site.index()) return true;
    }
  }
  return false;
}

void print_ptq_tables(const Report& r) {
  std::printf("%-44s %-10s %-34s %9s\n", "weight", "shape", "scheme", "SQNR dB");
  for (const quant::WeightQuantReport& w : r.ptq.weights) {
    std::printf("%-44s %-10s %-34s %9.2f\n", short_weight_name(w.name).c_str(),
                absl::StrCat(w.rows, "x", w.cols).c_str(), w.scheme.str().c_str(), w.sqnr_db);
  }
  const quant::ActivationQuantSpec& spec = r.ptq.activations;
  if (spec.quantized() && !spec.has_ranges()) {
    std::printf("\nactivations: %d-bit per token, computed at run time, at the %s\n", spec.bits,
                quant::activation_scope_name(spec.scope));
  } else if (spec.quantized()) {
    absl::StatusOr<ActivationQuantizer> quantizer = ActivationQuantizer::create(
        spec.calibration, r.num_layers, ActivationQuantOptions{spec.bits, spec.exclude});
    BF_CHECK(quantizer.ok(), quantizer.status().ToString());  // quantize_ptq checked it
    std::printf("\n%-44s %12s %12s %12s %6s\n", "activation", "min", "max", "scale", "zero");
    for (const TapSite& site : all_tap_sites(r.num_layers)) {
      if (spec.scope == quant::ActivationScope::kLinearInputs && !is_linear_input(site, r.num_layers)) continue;
      const ActivationRange& range = *spec.calibration.find(site.name());
      const ActivationQuantParams* p = quantizer->params(site);
      if (p == nullptr) {
        std::printf("%-44s %12.4f %12.4f %12s %6s\n", site.name().c_str(), range.min, range.max, "FP", "-");
      } else {
        std::printf("%-44s %12.4f %12.4f %12.6f %6d\n", site.name().c_str(), range.min, range.max, p->scale,
                    p->zero_point);
      }
    }
  } else {
    std::printf("\nactivations: FP (--activation_bits 0)\n");
  }
  if (!r.ptq.clipping.empty()) print_clipping_table(r);
}

Json report_json(const Report& r, const std::string& out) {
  Json j = Json::object();
  j.set("out", out);
  j.set("method", r.awq ? "awq" : "ptq");
  j.set("scheme", r.scheme);
  Json weights = Json::array();
  for (const quant::AwqLinearReport& w : r.awq_result.linears) {
    Json row = Json::object();
    row.set("name", w.name);
    row.set("shape", Json(Json::Array{Json(w.rows), Json(w.cols)}));
    row.set("scheme", w.scheme.to_json());
    row.set("group", quant::fold_group_name(w.group));
    row.set("scaled", awq_scaled_name(w));
    row.set("alpha", w.alpha);
    row.set("clip", Json(Json::Array{Json(double(w.clip_min)), Json(double(w.clip_mean)), Json(double(w.clip_max))}));
    row.set("rtn_mse", w.rtn_mse);
    row.set("scaled_mse", w.scaled_mse);
    row.set("awq_mse", w.awq_mse);
    weights.push_back(std::move(row));
  }
  const auto perplexity = [&](const PerplexityResult& p) { return r.has_perplexity ? Json(p.perplexity) : Json(); };
  if (r.awq) {
    j.set("rtn_perplexity", perplexity(r.rtn));
    j.set("rtn_hidden_sqnr_db", r.rtn_hidden.sqnr_db);
    j.set("rtn_hidden_cosine", r.rtn_hidden.mean_cosine);
  }
  for (const quant::WeightQuantReport& w : r.ptq.weights) {
    Json row = Json::object();
    row.set("name", w.name);
    row.set("shape", Json(Json::Array{Json(w.rows), Json(w.cols)}));
    row.set("scheme", w.scheme.to_json());
    row.set("sqnr_db", w.sqnr_db);
    weights.push_back(std::move(row));
  }
  j.set("weights", std::move(weights));
  j.set("activations", r.ptq.activations.to_json());
  j.set("fp_bytes", r.fp_bytes);
  j.set("quantized_bytes", r.quantized_bytes);
  j.set("fp_perplexity", perplexity(r.fp));
  j.set("quantized_perplexity", perplexity(r.quantized));
  j.set("scored_tokens", r.fp.scored_tokens);
  j.set("hidden_sqnr_db", r.hidden.sqnr_db);
  j.set("hidden_cosine", r.hidden.mean_cosine);
  j.set("hidden_tokens", r.hidden.tokens);
  j.set("int8_hidden_sqnr_db", r.int8_hidden.has_value() ? Json(r.int8_hidden->sqnr_db) : Json());
  j.set("int8_hidden_cosine", r.int8_hidden.has_value() ? Json(r.int8_hidden->mean_cosine) : Json());
  if (!r.int8_hidden.has_value()) j.set("int8_unavailable", r.int8_unavailable);
  Json migration = Json::object();
  migration.set("method", r.migration_method);
  Json groups = Json::array();
  for (const quant::MigrationGroupReport& g : r.migration.groups) {
    Json row = Json::object();
    row.set("layer", g.layer);
    row.set("group", quant::fold_group_name(g.group));
    row.set("migrated", g.migrated);
    row.set("alpha", g.alpha);
    row.set("input_max", Json(Json::Array{Json(double(g.input_max_before)), Json(double(g.input_max_after))}));
    row.set("outlier_ratio",
            Json(Json::Array{Json(double(g.outlier_ratio_before)), Json(double(g.outlier_ratio_after))}));
    row.set("output_error", Json(Json::Array{Json(g.error_before), Json(g.error_after)}));
    groups.push_back(std::move(row));
  }
  migration.set("groups", std::move(groups));
  j.set("migration", std::move(migration));
  Json clipping = Json::array();
  for (const quant::ClippingReport& c : r.ptq.clipping) {
    Json row = Json::object();
    row.set("site", c.site);
    row.set("minmax_range", Json(Json::Array{Json(double(c.result.minmax_range.min)),
                                             Json(double(c.result.minmax_range.max))}));
    row.set("range", Json(Json::Array{Json(double(c.result.range.min)), Json(double(c.result.range.max))}));
    row.set("coarse_quantile", c.result.coarse_quantile);
    row.set("minmax_error", c.result.minmax_error);
    row.set("coarse_error", c.result.coarse_error);
    row.set("fine_error", c.result.fine_error);
    clipping.push_back(std::move(row));
  }
  j.set("clipping", std::move(clipping));
  j.set("vocab", r.vocab);
  j.set("warn_sqnr_db", r.warn_sqnr_db);
  Json warnings = Json::array();
  for (const std::string& w : r.warnings) warnings.push_back(Json(w));
  j.set("warnings", std::move(warnings));
  return j;
}

// The recipe of README.md "W8A8 that survives a real BERT".
constexpr const char* kRecipe = "--granularity per_channel --activation_scope linear_inputs "
                                "--activation_granularity per_token --migration smooth --migration_alpha search";

bool is_recipe(const quant::PtqOptions& options, const quant::MigrationOptions& migration) {
  return options.weights.granularity == quant::Granularity::kPerChannel &&
         options.scope == quant::ActivationScope::kLinearInputs &&
         options.granularity == quant::ActivationGranularity::kPerToken &&
         migration.method == quant::MigrationMethod::kSmooth && migration.search_alpha;
}

// The warning for a final hidden state below --warn_sqnr_db (fake-quant or int8-executed), with what to try; none
// when both are at or above it.
std::optional<std::string> sqnr_warning(const Report& r, const quant::PtqOptions& options,
                                        const quant::MigrationOptions& migration) {
  const bool int8_low = r.int8_hidden.has_value() && r.int8_hidden->sqnr_db < r.warn_sqnr_db;
  if (!(r.hidden.sqnr_db < r.warn_sqnr_db) && !int8_low) return std::nullopt;
  std::string measured = absl::StrFormat("%.2f dB", r.hidden.sqnr_db);
  if (r.int8_hidden.has_value()) {
    absl::StrAppendFormat(&measured, " (executed in int8: %.2f dB)", r.int8_hidden->sqnr_db);
  }
  std::string hint;
  if (r.awq || options.activation_bits == 0) {
    hint = "the weights alone lose it: try more --weight_bits, --granularity per_channel, or --method awq";
  } else if (is_recipe(options, migration)) {
    hint = "this is already README.md's \"W8A8 that survives a real BERT\" recipe: try more --calibration_batches, "
           "or --activation_bits 0 to see whether the weights or the activations lose it";
  } else {
    hint = absl::StrCat("for a real BERT's activation outliers use README.md's \"W8A8 that survives a real BERT\" "
                        "recipe: ", kRecipe);
  }
  return absl::StrCat("the quantized model's final hidden state is ", measured, " SQNR against FP, below ",
                      "--warn_sqnr_db ", absl::StrFormat("%g", r.warn_sqnr_db),
                      ": it has lost the FP model's hidden state; ", hint);
}

// The vocab.txt to copy into --out: the checkpoint's (beside the model file, else its run's), else the data's,
// which calibration tokenized with (load_prepared_vocab checks its size). A checkpoint vocab that differs from
// the data's is warned about: the calibration text was tokenized with another vocabulary.
absl::StatusOr<std::string> vocab_to_copy(const CheckpointPaths& paths, const std::string& data) {
  const std::string data_vocab = (std::filesystem::path(data) / "vocab.txt").string();
  const absl::StatusOr<std::string> own = resolve_vocab_path(paths, "");
  if (!own.ok()) return data_vocab;
  BF_ASSIGN_OR_RETURN(const std::string own_text, read_file(*own));
  const absl::StatusOr<std::string> data_text = read_file(data_vocab);
  if (data_text.ok() && *data_text != own_text) {
    progress(absl::StrCat("warning: the checkpoint's ", *own, " differs from ", data_vocab,
                          ": the calibration and evaluation text was tokenized with another vocabulary than the "
                          "model's; ", *own, " is the one copied into --out"));
  }
  return *own;
}

absl::Status run() {
  const std::string method = absl::GetFlag(FLAGS_method);
  if (method != "ptq" && method != "awq") {
    return absl::InvalidArgumentError(absl::StrCat("--method must be ptq or awq, got \"", method, "\""));
  }
  const bool awq = method == "awq";
  quant::PtqOptions options;
  quant::AwqOptions awq_opts;
  quant::MigrationOptions migration;
  if (awq) {
    BF_ASSIGN_OR_RETURN(awq_opts, awq_options());
    if (absl::GetFlag(FLAGS_migration) != "none") {
      return absl::InvalidArgumentError("--migration is for --method ptq: AWQ searches and folds its own scales");
    }
  } else {
    BF_ASSIGN_OR_RETURN(options, ptq_options());
    BF_ASSIGN_OR_RETURN(migration, migration_options(options));
  }
  const std::string data = absl::GetFlag(FLAGS_data), out = absl::GetFlag(FLAGS_out);
  if (data.empty() || out.empty()) return absl::InvalidArgumentError("--data and --out are required (see --help)");
  BF_ASSIGN_OR_RETURN(const quant::QuantizedModelDirCheck out_check,
                      quant::check_quantized_model_dir(out, absl::GetFlag(FLAGS_overwrite)));
  const double warn_sqnr_db = absl::GetFlag(FLAGS_warn_sqnr_db);
  if (std::isnan(warn_sqnr_db)) return absl::InvalidArgumentError("--warn_sqnr_db must be a number (dB) or -inf");
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size), eval_batches = absl::GetFlag(FLAGS_eval_batches);
  if (batch_size < 1 || eval_batches < 0) {
    return absl::InvalidArgumentError("--batch_size must be at least 1 and --eval_batches non-negative");
  }
  BF_ASSIGN_OR_RETURN(const CheckpointPaths paths, resolve_checkpoint_paths(absl::GetFlag(FLAGS_checkpoint)));
  BF_ASSIGN_OR_RETURN(const std::string config_file, resolve_config_path(paths, absl::GetFlag(FLAGS_config)));
  BF_ASSIGN_OR_RETURN(const BertConfig config, BertConfig::load(config_file));
  BF_RETURN_IF_ERROR(config.validate());
  const int64_t seq_len = absl::GetFlag(FLAGS_seq_len);
  if (seq_len < 3 || seq_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("--seq_len must be in [3, ", config.max_position_embeddings, "], got ", seq_len));
  }
  BF_ASSIGN_OR_RETURN(const bool already_quantized, quant::is_quantized_checkpoint(paths.weights));
  if (already_quantized) {
    return absl::InvalidArgumentError(absl::StrCat(paths.weights, " is already quantized; give the FP checkpoint"));
  }
  // --overwrite lets bert_quant write into a foreign directory, but never over its own inputs.
  const auto same_dir = [&](const std::filesystem::path& dir) {
    return std::filesystem::weakly_canonical(out) == std::filesystem::weakly_canonical(dir);
  };
  if (same_dir(std::filesystem::path(paths.weights).parent_path()) ||
      same_dir(std::filesystem::path(config_file).parent_path())) {
    return absl::InvalidArgumentError(absl::StrCat("--out ", out, " is the directory of the FP checkpoint being "
                                                   "quantized (", paths.weights, "); give another directory"));
  }
  if (same_dir(data)) {
    return absl::InvalidArgumentError(absl::StrCat("--out ", out, " is the --data directory; give another one"));
  }
  if (out_check.previous_output) {
    progress(absl::StrCat("--out ", out, " holds a previous bert_quant output: replacing it"));
  } else if (!out_check.other_files.empty()) {  // --overwrite
    progress(absl::StrCat("--overwrite: writing into ", out, ", leaving its ",
                          absl::StrJoin(out_check.other_files, ", ")));
  }
  BF_ASSIGN_OR_RETURN(const std::string vocab_file, vocab_to_copy(paths, data));

  BF_ASSIGN_OR_RETURN(const MlmVocab vocab, load_prepared_vocab(data, config.vocab_size));
  DataLoaderOptions loader_options;
  loader_options.max_seq_len = seq_len;
  loader_options.batch_size = batch_size;
  loader_options.seed = absl::GetFlag(FLAGS_seed);
  const DataLoaderOptions migration_loader_options = loader_options;
  BF_ASSIGN_OR_RETURN(DataLoader calibration_loader, open_prepared_split(data, "train", vocab, loader_options));
  loader_options.shuffle = false;
  BF_ASSIGN_OR_RETURN(DataLoader validation_loader, open_prepared_split(data, "validation", vocab, loader_options));

  progress(absl::StrCat("loading ", paths.weights));
  BF_ASSIGN_OR_RETURN(const std::unique_ptr<BertForMaskedLM> model, load_hf_bert(paths.weights, config));
  std::unique_ptr<BertForMaskedLM> quantized_input;  // the migrated copy, with --migration
  Report report;
  report.num_layers = config.num_hidden_layers;
  report.vocab = vocab_file;
  report.warn_sqnr_db = warn_sqnr_db;
  report.has_perplexity = model->has_mlm_head();
  if (report.has_perplexity) {
    progress(absl::StrCat("evaluating the FP model (", eval_batches == 0 ? "all" : absl::StrCat(eval_batches),
                          " validation batches)"));
    report.fp = evaluate_perplexity(*model, validation_loader, eval_batches);
    progress(absl::StrFormat("FP perplexity %.4f", report.fp.perplexity));
  } else {
    progress("encoder-only model: no perplexity; the hidden states are compared with FP");
  }

  report.awq = awq;
  if (awq) {
    progress(absl::StrCat("AWQ: ", quant::ptq_weight_names(*model).size(), " encoder weights to ",
                          awq_opts.weights.str(), ", scales and clips searched on ", awq_opts.calibration_batches,
                          " training batches"));
    BF_ASSIGN_OR_RETURN(report.awq_result, quant::quantize_awq(*model, calibration_loader, awq_opts));
    BF_ASSIGN_OR_RETURN(const quant::QuantizedBert rtn,
                        quant::build_quantized_bert(quant::quantize_rtn(*model, awq_opts.weights), config,
                                                    quant::ActivationQuantSpec{}));
    progress("evaluating round-to-nearest with the same scheme");
    if (report.has_perplexity) report.rtn = evaluate_perplexity(*rtn.model, validation_loader, eval_batches);
    report.rtn_hidden = compare_hidden_states(*model, *rtn.model, validation_loader, eval_batches);
    report.ptq.state = report.awq_result.state;  // what is written; activations stay FP
  } else {
    progress(absl::StrCat("quantizing ", quant::ptq_weight_names(*model).size(), " encoder weights to ",
                          options.weights.str()));
  }
  if (!awq && options.activation_bits != 0) {
    progress(absl::StrCat("calibrating ", options.activation_bits, "-bit activation ranges on ",
                          options.calibration.batches, " training batches (",
                          observer_kind_name(options.calibration.observer.kind), ")"));
  }
  if (!awq && migration.method != quant::MigrationMethod::kNone) {
    report.migration_method = quant::migration_method_name(migration.method);
    progress(absl::StrCat(report.migration_method, " migration: per-channel statistics of the Linear inputs on ",
                          options.calibration.batches, " training batches, scales folded into a copy of the model"));
    // The same batches as the calibration below: a second loader with the same seed.
    BF_ASSIGN_OR_RETURN(DataLoader migration_loader,
                        open_prepared_split(data, "train", vocab, migration_loader_options));
    quantized_input = quant::clone_bert(*model);
    BF_ASSIGN_OR_RETURN(report.migration,
                        quant::migrate_outliers(*quantized_input,
                                                quant::loader_batches(migration_loader, options.calibration.batches),
                                                migration));
  }
  if (!awq) {
    if (options.clipping == quant::ActivationClipping::kTokenwise) {
      progress("token-wise clipping of the Linear inputs' ranges");
    }
    BF_ASSIGN_OR_RETURN(report.ptq, quant::quantize_ptq(quantized_input ? *quantized_input : *model,
                                                        calibration_loader, options));
  }

  // Staged inside --out, evaluated from there, then published: a failure on the way leaves --out as it was.
  progress(absl::StrCat("writing the quantized model into ", out, " (staged, published once evaluated)"));
  BF_ASSIGN_OR_RETURN(quant::StagedModelDir staged, quant::StagedModelDir::create(out));
  const std::string weights_file = staged.path(quant::kQuantizedWeightsFile);
  BF_RETURN_IF_ERROR(quant::save_quantized_bert(weights_file, report.ptq.state, report.ptq.activations));
  BF_RETURN_IF_ERROR(config.save(staged.path(quant::kQuantizedConfigFile)));
  BF_ASSIGN_OR_RETURN(const std::string vocab_text, read_file(vocab_file));
  BF_RETURN_IF_ERROR(write_file_atomic(staged.path(quant::kQuantizedVocabFile), vocab_text));
  report.fp_bytes = static_cast<int64_t>(std::filesystem::file_size(paths.weights));
  report.quantized_bytes = static_cast<int64_t>(std::filesystem::file_size(weights_file));

  progress("evaluating the quantized model, read back from the written file");
  BF_ASSIGN_OR_RETURN(quant::LoadedQuantizedBert quantized, quant::load_quantized_bert(weights_file, config));
  report.scheme = quantized.bert.describe(quantized.spec);
  if (report.has_perplexity) {
    report.quantized = evaluate_perplexity(*quantized.bert.model, validation_loader, eval_batches);
    progress(absl::StrFormat("quantized perplexity %.4f", report.quantized.perplexity));
  }
  report.hidden = compare_hidden_states(*model, *quantized.bert.model, validation_loader, eval_batches);
  progress(absl::StrFormat("quantized hidden state vs FP: %.2f dB SQNR", report.hidden.sqnr_db));
  absl::StatusOr<quant::LoadedQuantizedBert> int8 =
      quant::load_quantized_bert(weights_file, config, {quant::QuantizedExecution::kInt8});
  if (int8.ok()) {
    progress("executing the written file with the int8 kernels");
    report.int8_hidden = compare_hidden_states(*model, *int8->bert.model, validation_loader, eval_batches);
    progress(absl::StrFormat("int8-executed hidden state vs FP: %.2f dB SQNR", report.int8_hidden->sqnr_db));
  } else {
    report.int8_unavailable = std::string(int8.status().message());
  }
  if (std::optional<std::string> warning = sqnr_warning(report, options, migration)) {
    report.warnings.push_back(*warning);
    progress(absl::StrCat("warning: ", *warning));
  }
  const Json report_object = report_json(report, out);
  BF_RETURN_IF_ERROR(write_file_atomic(staged.path(quant::kQuantReportFile), report_object.dump(2) + "\n"));
  BF_RETURN_IF_ERROR(staged.publish());
  progress(absl::StrCat("wrote ", out, "/{", quant::kQuantizedWeightsFile, ", ", quant::kQuantizedActivationsFile,
                        ", ", quant::kQuantizedConfigFile, ", ", quant::kQuantizedVocabFile, ", ",
                        quant::kQuantReportFile, "}"));

  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", report_object.dump(2).c_str());
  } else {
    print_report(report);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace bertforge

int main(int argc, char** argv) {
  const char* usage = "post-training quantization of a BERT checkpoint, with a report; see --help";
  if (!bertforge::parse_tool_flags("bert_quant", usage, argc, argv)) return 2;
  return bertforge::run_tool("bert_quant", bertforge::run);
}
