// bert_train: masked-language-model pretraining of BERT (train/trainer.h).
//
//   bert_train --data DIR --out RUN [--preset tiny|mini|base | --config config.json]
//              [--attention softmax|clipped_softmax|gated] [--attention_init bert|reference]
//              [--clip_alpha A [--clip_alpha_warmup_steps N]] [--steps N] [--batch_size B] ...
//
// DIR is what bert_prep writes: DIR/vocab.txt, DIR/train/*.zst, DIR/validation/*.zst.
// A run killed mid-way continues from RUN/checkpoints/latest when started again. Ctrl-C (SIGINT) or SIGTERM
// finishes the step in progress, writes a checkpoint and exits with status 130 / 143; a second one exits at once.
// A new run in a directory that holds another is refused unless --overwrite (which deletes its checkpoints).
// RUN/flags records this command's flags: `bert_train --flagfile RUN/flags --out NEW` repeats the run.
//
// Continued pretraining: --init_from CHECKPOINT starts from pretrained weights (a Hugging Face BERT download,
// a bertforge run or checkpoint directory, or a .safetensors file); the model's config is the checkpoint's
// config.json, and the data must be tokenized with the checkpoint's vocab.txt (bert_prep --vocab).
//
// Data-parallel: `mpirun -np N bert_train ...` trains on N ranks (the README's "Data-parallel training"), each
// with --batch_size sequences per micro-batch. A rank that fails ends them all (MPI_Abort).
//
// GPUs: --device cuda (a build with the CUDA backend) trains on the GPU; under mpirun each rank takes the GPU of
// its local rank. --mixed_precision bf16|fp16 multiplies 16-bit activations and weight copies on tensor cores and
// keeps the 16-bit operands for backward (ops/autocast.h); --gemm_precision tf32|bf16|fp16 instead keeps every
// tensor FP32 and has cuBLAS round the inputs. With fp16, --loss_scale (dynamic by default) keeps small gradients
// from underflowing (train/loss_scaler.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "core/device.h"
#include "core/file_io.h"
#include "models/bert_config.h"
#include "train/checkpoint_paths.h"
#include "train/communicator.h"
#include "train/embedding_io.h"
#include "train/stop_signals.h"
#include "train/tokenizer.h"
#include "train/trainer.h"
#include "tools/tool_device.h"
#include "tools/tool_main.h"
#ifdef BERTFORGE_CUDA
#include "cuda/gemm.h"
#endif

ABSL_FLAG(std::string, data, "", "data directory written by bert_prep (vocab.txt, train/, validation/)");
ABSL_FLAG(std::string, vocab, "", "vocab.txt (default: DATA/vocab.txt)");
ABSL_FLAG(std::string, out, "", "run directory: checkpoints/, metrics.jsonl, config.json");
ABSL_FLAG(std::optional<std::string>, preset, std::nullopt,
          "model size: tiny (2x128, the default), mini (4x256) or base (12x768)");
ABSL_FLAG(std::string, config, "", "a BertConfig JSON file (Hugging Face field names); overrides --preset");
ABSL_FLAG(std::string, init_from, "",
          "continued pretraining: start from these weights (a Hugging Face BERT directory, a bertforge run or "
          "checkpoint, or a .safetensors file) with their config.json; a BertModel without MLM head gets a fresh one");
ABSL_FLAG(std::string, attention, "", "softmax, clipped_softmax or gated (default: the preset's or config's)");
ABSL_FLAG(std::optional<float>, clip_gamma, std::nullopt, "clipped softmax gamma (e.g. -0.025)");
ABSL_FLAG(std::optional<float>, clip_alpha, std::nullopt, "clipped softmax alpha: gamma = -alpha / T");
ABSL_FLAG(std::optional<float>, clip_zeta, std::nullopt, "clipped softmax zeta (e.g. 1.0)");
ABSL_FLAG(int64_t, clip_alpha_warmup_steps, 0,
          "clipped softmax: raise alpha linearly from --clip_alpha_warmup_start to --clip_alpha over the first N "
          "steps (0: off)");
ABSL_FLAG(std::optional<float>, clip_alpha_warmup_start, std::nullopt,
          "the alpha of the warm-up's first step (default zeta*T/(T-1), T = --seq_len: the clip threshold is then "
          "uniform attention 1/T)");
ABSL_FLAG(std::string, attention_init, "",
          "bert (normal(0, initializer_range)) or reference (PyTorch's nn.Linear init U(+-1/sqrt(in)), as the "
          "clipped-softmax paper's code) for the query/key/value projections (default: the preset's or config's)");
ABSL_FLAG(std::optional<float>, gate_pi_init, std::nullopt, "gated attention: initial gate openness in (0, 1)");
ABSL_FLAG(std::optional<float>, head_dropout, std::nullopt, "attention-head dropout probability");
ABSL_FLAG(std::optional<float>, dropout, std::nullopt,
          "hidden and attention-probability dropout (default: the preset's or config's, 0.1)");
ABSL_FLAG(int64_t, seq_len, 128, "tokens per sequence, [CLS] and [SEP] included");
ABSL_FLAG(int64_t, batch_size, 32, "sequences per micro-batch, per rank");
ABSL_FLAG(int64_t, grad_accumulation, 1, "micro-batches per optimizer step");
ABSL_FLAG(int64_t, steps, 1000, "optimizer steps");
ABSL_FLAG(std::optional<int64_t>, warmup_steps, std::nullopt,
          "linear warm-up steps, then linear decay to 0 (default: 10% of --steps; more than --steps is clamped)");
ABSL_FLAG(float, lr, 1e-4f, "peak learning rate");
ABSL_FLAG(float, weight_decay, 0.01f, "AdamW decoupled weight decay (not on biases and LayerNorm)");
ABSL_FLAG(float, max_grad_norm, 1.0f, "global gradient-norm clip (0: off)");
ABSL_FLAG(uint64_t, seed, 0, "seed of initialisation, shuffling, masking and dropout");
ABSL_FLAG(int64_t, log_interval, 10, "progress line every N steps");
ABSL_FLAG(int64_t, eval_interval, 200, "validation every N steps (0: only at the end)");
ABSL_FLAG(int64_t, eval_batches, 50, "validation batches per evaluation (0: all)");
ABSL_FLAG(int64_t, checkpoint_interval, 500, "checkpoint every N steps (0: only at the end)");
ABSL_FLAG(bool, resume, true,
          "continue the run in OUT if it has one (--noresume: a new run, refused where OUT holds one)");
ABSL_FLAG(bool, overwrite, false, "start a new run in OUT even if it holds one, deleting that run's checkpoints");
ABSL_FLAG(std::string, device, "cpu",
          "cpu, cuda or cuda:N; with several ranks, cuda gives each rank the GPU of its local rank (needs a build "
          "with the CUDA backend)");
ABSL_FLAG(std::string, gemm_precision, "fp32",
          "--device cuda: how cuBLAS multiplies the FP32 matrices: fp32, tf32, bf16 or fp16 (tensor cores; FP32 "
          "accumulation, FP32 weights, activations and optimizer state)");
ABSL_FLAG(std::string, mixed_precision, "none",
          "none, bf16 or fp16: round the operands of every matrix product (activations, copies of the FP32 weights, "
          "output gradients) to 16 bits, multiply them with FP32 accumulation (tensor cores on a GPU) and keep "
          "them in 16 bits for backward; weights, gradients and optimizer state stay FP32 (on a CPU it only "
          "reproduces the numerics)");
ABSL_FLAG(std::string, loss_scale, "auto",
          "auto, none, dynamic, or a power of two: backward starts from the loss times this scale, and the "
          "optimizer divides it out, so that small gradients survive FP16 arithmetic; dynamic halves it after a "
          "step whose gradients overflow (that step is skipped) and doubles it after 2000 steps without; auto is "
          "dynamic with --mixed_precision fp16 or --gemm_precision fp16, none otherwise");
ABSL_FLAG(double, collective_timeout_s, 1800,
          "data-parallel: seconds a rank waits for the others at start-up or in one collective before failing "
          "(rank 0 evaluates while the others wait)");

namespace bertforge {
namespace {

// The model: --config, else the config of --init_from's checkpoint, else --preset; then the attention flags
// (--attention_init only for a model initialised here: --init_from's weights are already initialised).
absl::StatusOr<BertConfig> model_config(int32_t vocab_size, const CheckpointPaths* init_from) {
  BertConfig config;
  if (!absl::GetFlag(FLAGS_config).empty() || init_from != nullptr) {
    const std::string explicit_config = absl::GetFlag(FLAGS_config);
    BF_ASSIGN_OR_RETURN(const std::string path,
                        init_from != nullptr ? resolve_config_path(*init_from, explicit_config) : explicit_config);
    BF_ASSIGN_OR_RETURN(config, BertConfig::load(path));
  } else {
    BF_ASSIGN_OR_RETURN(config, BertConfig::preset(absl::GetFlag(FLAGS_preset).value_or("tiny")));
    config.vocab_size = vocab_size;
  }
  if (!absl::GetFlag(FLAGS_attention).empty()) {
    BF_ASSIGN_OR_RETURN(config.attention, attention_variant_from_name(absl::GetFlag(FLAGS_attention)));
  }
  if (!absl::GetFlag(FLAGS_attention_init).empty()) {
    if (init_from != nullptr) {
      return absl::InvalidArgumentError("--init_from starts from the checkpoint's weights: drop --attention_init");
    }
    BF_ASSIGN_OR_RETURN(config.attention_init, attention_init_from_name(absl::GetFlag(FLAGS_attention_init)));
  }
  if (auto v = absl::GetFlag(FLAGS_clip_gamma)) config.clip_gamma = *v;
  if (auto v = absl::GetFlag(FLAGS_clip_alpha)) config.clip_alpha = *v;
  if (auto v = absl::GetFlag(FLAGS_clip_zeta)) config.clip_zeta = *v;
  if (auto v = absl::GetFlag(FLAGS_gate_pi_init)) config.gate_pi_init = *v;
  if (auto v = absl::GetFlag(FLAGS_head_dropout)) config.head_dropout_prob = *v;
  if (auto v = absl::GetFlag(FLAGS_dropout)) config.hidden_dropout_prob = config.attention_probs_dropout_prob = *v;
  BF_RETURN_IF_ERROR(config.validate());
  return config;
}

// The device of this rank (tools/tool_device.h), and on a GPU the GEMMs' precision.
absl::StatusOr<Device> training_device(int local_rank) {
  BF_ASSIGN_OR_RETURN(const Device device, select_device(absl::GetFlag(FLAGS_device), local_rank));
  if (absl::GetFlag(FLAGS_mixed_precision) != "none" && absl::GetFlag(FLAGS_gemm_precision) != "fp32") {
    return absl::InvalidArgumentError(
        "--mixed_precision already multiplies 16-bit operands: --gemm_precision (for FP32 operands) must stay fp32");
  }
#ifdef BERTFORGE_CUDA
  if (!device.is_cpu()) {
    BF_ASSIGN_OR_RETURN(const cuda::GemmPrecision precision,
                        cuda::parse_gemm_precision(absl::GetFlag(FLAGS_gemm_precision)));
    cuda::set_gemm_precision(precision);
  }
#endif
  return device;
}

// --init_from's checkpoint, whose vocabulary must be the one the data was tokenized with.
absl::StatusOr<CheckpointPaths> init_checkpoint(const std::string& data_vocab_path) {
  if (absl::GetFlag(FLAGS_preset).has_value()) {
    return absl::InvalidArgumentError("--init_from takes the model's size from its checkpoint: drop --preset");
  }
  BF_ASSIGN_OR_RETURN(CheckpointPaths paths, resolve_checkpoint_paths(absl::GetFlag(FLAGS_init_from)));
  const absl::StatusOr<std::string> checkpoint_vocab_path = resolve_vocab_path(paths, "");
  if (!checkpoint_vocab_path.ok()) {
    std::printf("warning: %s has no vocab.txt beside it: cannot check that the data was tokenized with its "
                "vocabulary (only the sizes are compared)\n", absl::GetFlag(FLAGS_init_from).c_str());
    return paths;
  }
  BF_ASSIGN_OR_RETURN(const std::string checkpoint_vocab, read_file(*checkpoint_vocab_path));
  BF_ASSIGN_OR_RETURN(const std::string data_vocab, read_file(data_vocab_path));
  if (checkpoint_vocab != data_vocab) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the data was tokenized with ", data_vocab_path, ", not with the checkpoint's vocabulary ",
        *checkpoint_vocab_path, ": prepare it again with bert_prep --vocab ", *checkpoint_vocab_path));
  }
  return paths;
}

// The warm-up: --warmup_steps, or 10% of the run; longer than the run is clamped to it, with a warning.
int64_t warmup_steps(int64_t steps) {
  const std::optional<int64_t> asked = absl::GetFlag(FLAGS_warmup_steps);
  if (!asked) return steps / 10;
  if (*asked > steps) {
    std::printf("warning: --warmup_steps %lld is longer than the run (--steps %lld): warming up over all of it\n",
                static_cast<long long>(*asked), static_cast<long long>(steps));
    return steps;
  }
  return *asked;
}

// This tool's flags with their values, one --name=value per line: a --flagfile that repeats the run from any
// directory (paths made absolute; --out and the directory-handling flags left out, as they belong to the
// directory, not to the run).
std::string flags_record() {
  std::vector<std::string> lines;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::EndsWith(flag->Filename(), "bert_train.cpp")) continue;
    if (name == "out" || name == "resume" || name == "overwrite") continue;
    std::string value = flag->CurrentValue();
    const bool is_path = name == "data" || name == "vocab" || name == "config" || name == "init_from";
    if (is_path && !value.empty()) value = std::filesystem::absolute(value).lexically_normal().string();
    lines.push_back(absl::StrCat("--", name, "=", value));
  }
  std::sort(lines.begin(), lines.end());
  return absl::StrCat("# The flags of this run (bert_train writes this file when a run starts or continues).\n",
                      "# Repeat the run elsewhere: bert_train --flagfile THIS_FILE --out NEW_RUN_DIR\n",
                      absl::StrJoin(lines, "\n"), "\n");
}

absl::Status run(Communicator& communicator, Device device) {
  const std::string data = absl::GetFlag(FLAGS_data);
  if (data.empty() || absl::GetFlag(FLAGS_out).empty()) {
    return absl::InvalidArgumentError("--data and --out are required (see --help)");
  }
  const std::string vocab_path = absl::GetFlag(FLAGS_vocab).empty() ? data + "/vocab.txt" : absl::GetFlag(FLAGS_vocab);
  BF_ASSIGN_OR_RETURN(const WordPieceTokenizer tokenizer, WordPieceTokenizer::load(vocab_path));
  TrainerConfig config;
  std::optional<CheckpointPaths> init_from;
  if (!absl::GetFlag(FLAGS_init_from).empty()) {
    BF_ASSIGN_OR_RETURN(init_from, init_checkpoint(vocab_path));
    config.init_from = init_from->weights;
  }
  BF_ASSIGN_OR_RETURN(config.model, model_config(tokenizer.vocab_size(), init_from ? &*init_from : nullptr));
  config.vocab = MlmVocab{tokenizer.vocab_size(), tokenizer.pad_id(), tokenizer.unk_id(), tokenizer.cls_id(),
                          tokenizer.sep_id(), tokenizer.mask_id()};
  config.train_data = data + "/train";
  if (std::filesystem::is_directory(data + "/validation")) config.validation_data = data + "/validation";
  config.run_dir = absl::GetFlag(FLAGS_out);
  config.vocab_file = vocab_path;
  config.seq_len = absl::GetFlag(FLAGS_seq_len);
  config.batch_size = absl::GetFlag(FLAGS_batch_size);
  config.grad_accumulation = absl::GetFlag(FLAGS_grad_accumulation);
  config.steps = absl::GetFlag(FLAGS_steps);
  config.warmup_steps = warmup_steps(config.steps);
  absl::SetFlag(&FLAGS_warmup_steps, config.warmup_steps);  // recorded as used
  config.lr = absl::GetFlag(FLAGS_lr);
  config.weight_decay = absl::GetFlag(FLAGS_weight_decay);
  config.max_grad_norm = absl::GetFlag(FLAGS_max_grad_norm);
  config.seed = absl::GetFlag(FLAGS_seed);
  config.clip_alpha_warmup_steps = absl::GetFlag(FLAGS_clip_alpha_warmup_steps);
  config.clip_alpha_warmup_start = absl::GetFlag(FLAGS_clip_alpha_warmup_start);
  config.log_interval = absl::GetFlag(FLAGS_log_interval);
  config.eval_interval = absl::GetFlag(FLAGS_eval_interval);
  config.eval_batches = absl::GetFlag(FLAGS_eval_batches);
  config.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  config.existing_run = absl::GetFlag(FLAGS_overwrite) ? ExistingRun::kReplace
                        : absl::GetFlag(FLAGS_resume)  ? ExistingRun::kResume
                                                       : ExistingRun::kRefuse;
  config.stop_requested = [] { return StopSignals::requested(); };
  BF_ASSIGN_OR_RETURN(config.mixed_precision, parse_mixed_precision(absl::GetFlag(FLAGS_mixed_precision)));
  const bool fp16_arithmetic = config.mixed_precision == DType::kF16 || absl::GetFlag(FLAGS_gemm_precision) == "fp16";
  BF_ASSIGN_OR_RETURN(config.loss_scale, parse_loss_scale(absl::GetFlag(FLAGS_loss_scale), fp16_arithmetic));
  config.device = device;
  config.flags_record = flags_record();
  return train_bert(config, communicator);
}

// Reports `message` and ends this process, and under a multi-rank launch every rank of the job.
[[noreturn]] void fail(Communicator* communicator, const std::string& message) {
  if (communicator != nullptr && communicator->world_size() > 1) {
    std::fprintf(stderr, "bert_train: rank %d: %s\n", communicator->rank(), message.c_str());
    communicator->abort(1);
  }
  std::fprintf(stderr, "bert_train: %s\n", message.c_str());
  std::exit(1);
}

}  // namespace
}  // namespace bertforge

int main(int argc, char** argv) {
  if (!bertforge::parse_tool_flags("bert_train", "pretrains BERT with masked-language modelling; see --help", argc,
                                   argv)) {
    return 2;
  }
  std::unique_ptr<bertforge::Communicator> communicator;
  try {
    const absl::StatusOr<bertforge::LaunchEnvironment> launch =
        bertforge::detect_launch_environment([](const char* name) { return std::getenv(name); });
    if (!launch.ok()) bertforge::fail(nullptr, std::string(launch.status().message()));
    // The device first: GPU ranks exchange gradients over NCCL, on that GPU.
    const absl::StatusOr<bertforge::Device> device = bertforge::training_device(launch->local_rank);
    if (!device.ok()) bertforge::fail(nullptr, std::string(device.status().message()));
    bertforge::CommunicatorOptions options;
    options.timeout_seconds = absl::GetFlag(FLAGS_collective_timeout_s);
    options.device = *device;
    absl::StatusOr<std::unique_ptr<bertforge::Communicator>> made = bertforge::make_communicator(*launch, options);
    if (!made.ok()) bertforge::fail(nullptr, std::string(made.status().message()));
    communicator = std::move(*made);
    const bertforge::StopSignals stop_signals;
    const absl::Status status = bertforge::run(*communicator, *device);
    if (absl::IsCancelled(status)) {  // stopped by a signal, with a checkpoint: the shell's 128 + signal number
      if (communicator->rank() == 0) std::fprintf(stderr, "bert_train: %s\n", std::string(status.message()).c_str());
      return 128 + bertforge::StopSignals::signal_number();
    }
    if (!status.ok()) bertforge::fail(communicator.get(), std::string(status.message()));
  } catch (const bertforge::Error& e) {
    bertforge::fail(communicator.get(), e.what());
  }
  return 0;
}
