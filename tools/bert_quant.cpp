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
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "core/file_io.h"
#include "core/json.h"
#include "models/bert.h"
#include "models/bert_config.h"
#include "models/hf_checkpoint.h"
#include "quant/awq.h"
#include "quant/channel_fold.h"
#include "quant/group_statistics.h"
#include "quant/migration.h"
#include "quant/ptq.h"
#include "quant/quant_report.h"
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

// The quantization method and its options, from --method and the flags it reads.
struct MethodOptions {
  bool awq = false;                   // --method awq, else ptq
  quant::AwqOptions awq_opts;         // --method awq
  quant::PtqOptions ptq;              // --method ptq
  quant::MigrationOptions migration;  // --method ptq
};

absl::StatusOr<MethodOptions> method_options() {
  const std::string method = absl::GetFlag(FLAGS_method);
  if (method != "ptq" && method != "awq") {
    return absl::InvalidArgumentError(absl::StrCat("--method must be ptq or awq, got \"", method, "\""));
  }
  MethodOptions options;
  options.awq = method == "awq";
  if (options.awq) {
    BF_ASSIGN_OR_RETURN(options.awq_opts, awq_options());
    if (absl::GetFlag(FLAGS_migration) != "none") {
      return absl::InvalidArgumentError("--migration is for --method ptq: AWQ searches and folds its own scales");
    }
  } else {
    BF_ASSIGN_OR_RETURN(options.ptq, ptq_options());
    BF_ASSIGN_OR_RETURN(options.migration, migration_options(options.ptq));
  }
  return options;
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

// What a run reads and where it writes, from the flags, checked before any work.
struct RunInputs {
  std::string data, out;  // --data, --out
  CheckpointPaths paths;  // the FP checkpoint
  BertConfig config;
  std::string vocab_file;  // copied into --out
  int64_t batch_size = 0, eval_batches = 0, seq_len = 0;
  double warn_sqnr_db = 0;
};

// Resolves --checkpoint and --config and checks --out (quant/quantized_model_dir.h; never the checkpoint's or
// --data's directory), --warn_sqnr_db and the batch shape; says how --out will be written.
absl::StatusOr<RunInputs> check_inputs() {
  RunInputs in;
  in.data = absl::GetFlag(FLAGS_data);
  in.out = absl::GetFlag(FLAGS_out);
  if (in.data.empty() || in.out.empty()) {
    return absl::InvalidArgumentError("--data and --out are required (see --help)");
  }
  BF_ASSIGN_OR_RETURN(const quant::QuantizedModelDirCheck out_check,
                      quant::check_quantized_model_dir(in.out, absl::GetFlag(FLAGS_overwrite)));
  in.warn_sqnr_db = absl::GetFlag(FLAGS_warn_sqnr_db);
  if (std::isnan(in.warn_sqnr_db)) return absl::InvalidArgumentError("--warn_sqnr_db must be a number (dB) or -inf");
  in.batch_size = absl::GetFlag(FLAGS_batch_size);
  in.eval_batches = absl::GetFlag(FLAGS_eval_batches);
  if (in.batch_size < 1 || in.eval_batches < 0) {
    return absl::InvalidArgumentError("--batch_size must be at least 1 and --eval_batches non-negative");
  }
  BF_ASSIGN_OR_RETURN(in.paths, resolve_checkpoint_paths(absl::GetFlag(FLAGS_checkpoint)));
  BF_ASSIGN_OR_RETURN(const std::string config_file, resolve_config_path(in.paths, absl::GetFlag(FLAGS_config)));
  BF_ASSIGN_OR_RETURN(in.config, BertConfig::load(config_file));
  BF_RETURN_IF_ERROR(in.config.validate());
  in.seq_len = absl::GetFlag(FLAGS_seq_len);
  if (in.seq_len < 3 || in.seq_len > in.config.max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("--seq_len must be in [3, ", in.config.max_position_embeddings, "], got ", in.seq_len));
  }
  BF_ASSIGN_OR_RETURN(const bool already_quantized, quant::is_quantized_checkpoint(in.paths.weights));
  if (already_quantized) {
    return absl::InvalidArgumentError(absl::StrCat(in.paths.weights, " is already quantized; give the FP checkpoint"));
  }
  // --overwrite lets bert_quant write into a foreign directory, but never over its own inputs.
  const auto same_dir = [&](const std::filesystem::path& dir) {
    return std::filesystem::weakly_canonical(in.out) == std::filesystem::weakly_canonical(dir);
  };
  if (same_dir(std::filesystem::path(in.paths.weights).parent_path()) ||
      same_dir(std::filesystem::path(config_file).parent_path())) {
    return absl::InvalidArgumentError(absl::StrCat("--out ", in.out, " is the directory of the FP checkpoint being "
                                                   "quantized (", in.paths.weights, "); give another directory"));
  }
  if (same_dir(in.data)) {
    return absl::InvalidArgumentError(absl::StrCat("--out ", in.out, " is the --data directory; give another one"));
  }
  if (out_check.previous_output) {
    progress(absl::StrCat("--out ", in.out, " holds a previous bert_quant output: replacing it"));
  } else if (!out_check.other_files.empty()) {  // --overwrite
    progress(absl::StrCat("--overwrite: writing into ", in.out, ", leaving its ",
                          absl::StrJoin(out_check.other_files, ", ")));
  }
  BF_ASSIGN_OR_RETURN(in.vocab_file, vocab_to_copy(in.paths, in.data));
  return in;
}

// The batches of --data: calibration from DIR/train (shuffled by --seed), evaluation from DIR/validation.
struct RunData {
  MlmVocab vocab;
  DataLoaderOptions calibration_options;  // a second loader with them yields the calibration batches again
  DataLoader calibration, validation;
};

absl::StatusOr<RunData> open_data(const RunInputs& in) {
  BF_ASSIGN_OR_RETURN(MlmVocab vocab, load_prepared_vocab(in.data, in.config.vocab_size));
  DataLoaderOptions options;
  options.max_seq_len = in.seq_len;
  options.batch_size = in.batch_size;
  options.seed = absl::GetFlag(FLAGS_seed);
  BF_ASSIGN_OR_RETURN(DataLoader calibration, open_prepared_split(in.data, "train", vocab, options));
  DataLoaderOptions validation_options = options;
  validation_options.shuffle = false;
  BF_ASSIGN_OR_RETURN(DataLoader validation, open_prepared_split(in.data, "validation", vocab, validation_options));
  return RunData{std::move(vocab), options, std::move(calibration), std::move(validation)};
}

// --method awq: the AWQ weights into the report, and round-to-nearest with the same scheme evaluated against FP
// as its baseline.
absl::Status quantize_with_awq(BertForMaskedLM& model, const RunInputs& in, const quant::AwqOptions& options,
                               RunData& data, quant::QuantReport& report) {
  progress(absl::StrCat("AWQ: ", quant::ptq_weight_names(model).size(), " encoder weights to ", options.weights.str(),
                        ", scales and clips searched on ", options.calibration_batches, " training batches"));
  BF_ASSIGN_OR_RETURN(report.awq_result, quant::quantize_awq(model, data.calibration, options));
  BF_ASSIGN_OR_RETURN(const quant::QuantizedBert rtn,
                      quant::build_quantized_bert(quant::quantize_rtn(model, options.weights), in.config,
                                                  quant::ActivationQuantSpec{}));
  progress("evaluating round-to-nearest with the same scheme");
  if (report.has_perplexity) report.rtn = evaluate_perplexity(*rtn.model, data.validation, in.eval_batches);
  report.rtn_hidden = compare_hidden_states(model, *rtn.model, data.validation, in.eval_batches);
  report.ptq.state = report.awq_result.state;  // what is written; activations stay FP
  return absl::OkStatus();
}

// --method ptq: the outlier migration, into a copy of the model, when asked, then quantize_ptq (weights, then
// activation calibration) into the report.
absl::Status quantize_with_ptq(const BertForMaskedLM& model, const RunInputs& in, const MethodOptions& method,
                               RunData& data, quant::QuantReport& report) {
  const quant::PtqOptions& options = method.ptq;
  progress(absl::StrCat("quantizing ", quant::ptq_weight_names(model).size(), " encoder weights to ",
                        options.weights.str()));
  if (options.activation_bits != 0) {
    progress(absl::StrCat("calibrating ", options.activation_bits, "-bit activation ranges on ",
                          options.calibration.batches, " training batches (",
                          observer_kind_name(options.calibration.observer.kind), ")"));
  }
  std::unique_ptr<BertForMaskedLM> migrated;  // with --migration
  if (method.migration.method != quant::MigrationMethod::kNone) {
    report.migration_method = quant::migration_method_name(method.migration.method);
    progress(absl::StrCat(report.migration_method, " migration: per-channel statistics of the Linear inputs on ",
                          options.calibration.batches, " training batches, scales folded into a copy of the model"));
    // The same batches as the calibration below: a second loader with the same seed.
    BF_ASSIGN_OR_RETURN(DataLoader migration_loader,
                        open_prepared_split(in.data, "train", data.vocab, data.calibration_options));
    migrated = quant::clone_bert(model);
    BF_ASSIGN_OR_RETURN(report.migration,
                        quant::migrate_outliers(*migrated,
                                                quant::loader_batches(migration_loader, options.calibration.batches),
                                                method.migration));
  }
  if (options.clipping == quant::ActivationClipping::kTokenwise) {
    progress("token-wise clipping of the Linear inputs' ranges");
  }
  BF_ASSIGN_OR_RETURN(report.ptq, quant::quantize_ptq(migrated ? *migrated : model, data.calibration, options));
  return absl::OkStatus();
}

// Writes the quantized model, config.json and vocab.txt into --out (staged), evaluates the model read back from
// the written file against the FP `model` (fake-quant, and int8-executed where the scheme allows), adds the SQNR
// warning, writes quant_report.json and publishes: a failure on the way leaves --out as it was. Returns the report's
// JSON object.
absl::StatusOr<Json> write_and_evaluate(BertForMaskedLM& model, const RunInputs& in, const MethodOptions& method,
                                        DataLoader& validation, quant::QuantReport& report) {
  progress(absl::StrCat("writing the quantized model into ", in.out, " (staged, published once evaluated)"));
  BF_ASSIGN_OR_RETURN(quant::StagedModelDir staged, quant::StagedModelDir::create(in.out));
  const std::string weights_file = staged.path(quant::kQuantizedWeightsFile);
  BF_RETURN_IF_ERROR(quant::save_quantized_bert(weights_file, report.ptq.state, report.ptq.activations));
  BF_RETURN_IF_ERROR(in.config.save(staged.path(quant::kQuantizedConfigFile)));
  BF_ASSIGN_OR_RETURN(const std::string vocab_text, read_file(in.vocab_file));
  BF_RETURN_IF_ERROR(write_file_atomic(staged.path(quant::kQuantizedVocabFile), vocab_text));
  report.fp_bytes = static_cast<int64_t>(std::filesystem::file_size(in.paths.weights));
  report.quantized_bytes = static_cast<int64_t>(std::filesystem::file_size(weights_file));

  progress("evaluating the quantized model, read back from the written file");
  BF_ASSIGN_OR_RETURN(quant::LoadedQuantizedBert quantized, quant::load_quantized_bert(weights_file, in.config));
  report.scheme = quantized.bert.describe(quantized.spec);
  if (report.has_perplexity) {
    report.quantized = evaluate_perplexity(*quantized.bert.model, validation, in.eval_batches);
    progress(absl::StrFormat("quantized perplexity %.4f", report.quantized.perplexity));
  }
  report.hidden = compare_hidden_states(model, *quantized.bert.model, validation, in.eval_batches);
  progress(absl::StrFormat("quantized hidden state vs FP: %.2f dB SQNR", report.hidden.sqnr_db));
  absl::StatusOr<quant::LoadedQuantizedBert> int8 =
      quant::load_quantized_bert(weights_file, in.config, {quant::QuantizedExecution::kInt8});
  if (int8.ok()) {
    progress("executing the written file with the int8 kernels");
    report.int8_hidden = compare_hidden_states(model, *int8->bert.model, validation, in.eval_batches);
    progress(absl::StrFormat("int8-executed hidden state vs FP: %.2f dB SQNR", report.int8_hidden->sqnr_db));
  } else {
    report.int8_unavailable = std::string(int8.status().message());
  }
  if (std::optional<std::string> warning = quant::sqnr_warning(report, method.ptq, method.migration)) {
    report.warnings.push_back(*warning);
    progress(absl::StrCat("warning: ", *warning));
  }
  Json report_object = quant::quant_report_json(report, in.out);
  BF_RETURN_IF_ERROR(write_file_atomic(staged.path(quant::kQuantReportFile), report_object.dump(2) + "\n"));
  BF_RETURN_IF_ERROR(staged.publish());
  progress(absl::StrCat("wrote ", in.out, "/{", quant::kQuantizedWeightsFile, ", ", quant::kQuantizedActivationsFile,
                        ", ", quant::kQuantizedConfigFile, ", ", quant::kQuantizedVocabFile, ", ",
                        quant::kQuantReportFile, "}"));
  return report_object;
}

absl::Status run() {
  BF_ASSIGN_OR_RETURN(const MethodOptions method, method_options());
  BF_ASSIGN_OR_RETURN(const RunInputs in, check_inputs());
  BF_ASSIGN_OR_RETURN(RunData data, open_data(in));

  progress(absl::StrCat("loading ", in.paths.weights));
  BF_ASSIGN_OR_RETURN(const std::unique_ptr<BertForMaskedLM> model, load_hf_bert(in.paths.weights, in.config));
  quant::QuantReport report;
  report.num_layers = in.config.num_hidden_layers;
  report.vocab = in.vocab_file;
  report.warn_sqnr_db = in.warn_sqnr_db;
  report.has_perplexity = model->has_mlm_head();
  if (report.has_perplexity) {
    progress(absl::StrCat("evaluating the FP model (", in.eval_batches == 0 ? "all" : absl::StrCat(in.eval_batches),
                          " validation batches)"));
    report.fp = evaluate_perplexity(*model, data.validation, in.eval_batches);
    progress(absl::StrFormat("FP perplexity %.4f", report.fp.perplexity));
  } else {
    progress("encoder-only model: no perplexity; the hidden states are compared with FP");
  }

  report.awq = method.awq;
  if (method.awq) {
    BF_RETURN_IF_ERROR(quantize_with_awq(*model, in, method.awq_opts, data, report));
  } else {
    BF_RETURN_IF_ERROR(quantize_with_ptq(*model, in, method, data, report));
  }
  BF_ASSIGN_OR_RETURN(const Json report_object, write_and_evaluate(*model, in, method, data.validation, report));
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", report_object.dump(2).c_str());
  } else {
    quant::print_quant_report(report);
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
