// The pretraining loop: one optimizer step = grad_accumulation micro-batches on every rank.
//
// train_bert (at the bottom) is the algorithm: start or resume a TrainingRun, then per step train, log, and
// evaluate / checkpoint when due. TrainingRun holds the run's state (data, model, optimizer, gradient reducer,
// loss scaler, metrics) and names each piece of a step.
#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "autograd/engine.h"
#include "models/bert.h"
#include "models/pretrained_weights.h"
#include "ops/autocast.h"
#include "ops/cpu/gemm.h"
#include "train/checkpoint.h"
#include "train/communicator_buckets.h"
#include "train/data_loader.h"
#include "train/evaluation.h"
#include "train/metrics_log.h"
#include "train/optimizer.h"
#include "train/run_directory.h"

namespace bertforge {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status invalid(absl::string_view what) { return absl::InvalidArgumentError(std::string(what)); }

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The loader of rank `rank` of `world_size` (validation: rank 0 of 1, unshuffled).
absl::StatusOr<DataLoader> open_loader(const std::string& path, const TrainerConfig& config, bool shuffle, int rank,
                                       int world_size) {
  BF_ASSIGN_OR_RETURN(std::vector<std::string> shards, find_shards(path));
  DataLoaderOptions options;
  options.max_seq_len = config.seq_len;
  options.batch_size = config.batch_size;
  options.seed = config.seed;
  options.shuffle = shuffle;
  options.rank = rank;
  options.world_size = world_size;
  return DataLoader::open(shards, config.vocab, options);
}

int64_t labelled_tokens(const MlmBatch& batch) {
  const int64_t* labels = batch.labels.data<int64_t>();
  int64_t count = 0;
  for (int64_t i = 0; i < batch.labels.numel(); ++i) count += labels[i] != kMlmIgnoreLabel;
  return count;
}

OptimizerConfig optimizer_config(const TrainerConfig& config) {
  OptimizerConfig optimizer;
  optimizer.adamw.weight_decay = config.weight_decay;
  optimizer.adamw.eps = config.adam_eps;
  optimizer.max_grad_norm = config.max_grad_norm;
  return optimizer;
}

// What one optimizer step did (the same on every rank).
struct StepOutcome {
  double loss = 0;                  // mean MLM loss over the step's labelled tokens, all micro-batches and ranks
  float lr = 0;
  float grad_norm = 0;              // global norm before clipping; not finite when the step was skipped
  bool applied = true;              // false: the gradients were not finite and AdamW skipped the update
  float loss_scale = 1;             // what backward's seed was multiplied by (1 without loss scaling)
  std::optional<float> clip_alpha;  // the clipped-softmax alpha the step trained with
  bool stop_requested = false;      // some rank was asked to stop: the run ends after this step
  double seconds = 0;               // wall time of the step
};

// One rank's training run, from its first (or resumed) step to its last.
class TrainingRun {
 public:
  // Opens the data, builds the model, optimizer, reducer and loss scaler, continues the run in config.run_dir if
  // there is one (and config.existing_run allows it), and checks that every rank starts the same run.
  static absl::StatusOr<std::unique_ptr<TrainingRun>> start(const TrainerConfig& config,
                                                            Communicator& communicator);

  int64_t step() const { return step_; }  // optimizer steps completed
  bool leader() const { return communicator_.rank() == 0; }  // rank 0 evaluates, prints and writes

  // Forward, backward-and-reduce over grad_accumulation micro-batches, then AdamW: step() goes up by one.
  StepOutcome train_step();
  // Leader: the step's record in metrics.jsonl, and a progress line every --log_interval steps.
  absl::Status log(const StepOutcome& outcome);
  // Leader: validation perplexity and outlier metrics, printed and appended to metrics.jsonl.
  absl::Status evaluate();
  // Leader: model, optimizer and trainer state (step, loader position, loss scale, the run's identity).
  absl::Status checkpoint();
  // After a requested stop: a checkpoint of the last step (leader), then Cancelled on every rank.
  absl::Status end_stopped();
  // After the last step: the final evaluation and checkpoint (leader), then every rank waits for them.
  absl::Status finish();

 private:
  // `model` is initialised and on config.device.
  TrainingRun(const TrainerConfig& config, Communicator& communicator, DataLoader train_loader,
              std::optional<DataLoader> validation_loader, std::unique_ptr<BertForMaskedLM> model);
  absl::Status resume_from(const std::string& checkpoint_dir);
  void print_header() const;
  // The clipped softmax alpha that step `at_step` trains with (the warm-up's or the model's), which the
  // evaluation after it uses too; nullopt for the other variants and for a fixed gamma.
  std::optional<float> clip_alpha_at(int64_t at_step) const;
  // The step's micro-batches and their labelled-token count summed over every rank.
  std::pair<std::vector<MlmBatch>, int64_t> next_batches();
  // Back-propagates `loss` seeded with `seed` (micro-batch weight x loss scale). With reduce_over_ranks (the
  // step's last micro-batch, several ranks) each bucket of gradients is all-reduced as soon as backward has
  // finished it, overlapping communication with the rest of backward; returns when every bucket is reduced.
  void backward_and_reduce(const Tensor& loss, float seed, bool reduce_over_ranks);

  const TrainerConfig& config_;
  Communicator& communicator_;
  DataLoader train_loader_;
  std::optional<DataLoader> validation_loader_;  // leader only, when there is validation data
  std::unique_ptr<BertForMaskedLM> model_;
  NamedTensors parameters_;  // the model's, where it lives: the optimizer state is made beside them
  AdamWOptimizer optimizer_;
  LrSchedule schedule_;
  BucketedReducer reducer_;
  LossScaler loss_scaler_;
  std::optional<ClipAlphaWarmup> alpha_warmup_;
  MetricsLog metrics_;
  // The perplexity a model that ignores context cannot beat, on the evaluation batches: the yardstick printed
  // beside the validation perplexity.
  double unigram_baseline_ = 0;
  int64_t step_ = 0;
  int64_t first_step_ = 0;  // where this invocation started
  int64_t last_checkpoint_step_ = 0;
  Clock::time_point run_start_;
};

TrainingRun::TrainingRun(const TrainerConfig& config, Communicator& communicator, DataLoader train_loader,
                         std::optional<DataLoader> validation_loader, std::unique_ptr<BertForMaskedLM> model)
    : config_(config),
      communicator_(communicator),
      train_loader_(std::move(train_loader)),
      validation_loader_(std::move(validation_loader)),
      model_(std::move(model)),
      parameters_(model_->named_parameters()),
      optimizer_(parameters_, optimizer_config(config)),
      schedule_{config.lr, config.warmup_steps, config.steps},
      reducer_(communicator, parameters_),
      loss_scaler_(config.loss_scale),
      alpha_warmup_(config.clip_alpha_warmup()) {}

absl::StatusOr<std::unique_ptr<TrainingRun>> TrainingRun::start(const TrainerConfig& config,
                                                                Communicator& communicator) {
  const int rank = communicator.rank(), world_size = communicator.world_size();
  const bool leader = rank == 0;
  BF_ASSIGN_OR_RETURN(DataLoader train_loader,
                      open_loader(config.train_data, config, /*shuffle=*/true, rank, world_size));
  std::optional<DataLoader> validation_loader;
  if (leader && !config.validation_data.empty()) {
    BF_ASSIGN_OR_RETURN(validation_loader, open_loader(config.validation_data, config, /*shuffle=*/false, 0, 1));
  }
  BF_ASSIGN_OR_RETURN(const std::optional<std::string> resume_from, checkpoint_to_resume(config, leader));
  if (leader) BF_RETURN_IF_ERROR(write_run_records(config));

  auto model = std::make_unique<BertForMaskedLM>(config.model, config.seed);
  if (!resume_from && !config.init_from.empty()) {
    BF_ASSIGN_OR_RETURN(const PretrainedLoad loaded, load_pretrained_weights(config.init_from, *model));
    if (leader) {
      std::printf("initialised from %s (%s%s)\n", config.init_from.c_str(), loaded.layout.describe().c_str(),
                  loaded.fresh.empty() ? "" : "; the MLM head starts freshly initialised");
    }
  }
  model->to(config.device);  // before the optimizer, whose state is made beside the parameters
  model->train();
  std::unique_ptr<TrainingRun> run(new TrainingRun(config, communicator, std::move(train_loader),
                                                   std::move(validation_loader), std::move(model)));
  if (resume_from) BF_RETURN_IF_ERROR(run->resume_from(*resume_from));
  if (world_size > 1) {
    BF_RETURN_IF_ERROR(check_ranks_agree(communicator, config, run->step_));
    run->reducer_.broadcast_parameters(0);  // identical initial weights, whatever each rank's initialisation did
  }
  if (leader) {
    BF_RETURN_IF_ERROR(config.model.save(config.run_dir + "/config.json"));
    BF_RETURN_IF_ERROR(run->metrics_.open(config.run_dir + "/metrics.jsonl", run->step_ > 0 ? run->step_ : -1));
  }
  if (run->validation_loader_) {
    run->unigram_baseline_ =
        unigram_perplexity(*run->validation_loader_, config.model.vocab_size, config.eval_batches);
  }
  if (leader) run->print_header();
  run->model_->set_clip_alpha(run->clip_alpha_at(run->step_));  // for the final evaluation of a run resumed at its end
  run->first_step_ = run->last_checkpoint_step_ = run->step_;
  run->run_start_ = Clock::now();
  return run;
}

absl::Status TrainingRun::resume_from(const std::string& checkpoint_dir) {
  BF_ASSIGN_OR_RETURN(const Json state, load_checkpoint(checkpoint_dir, parameters_, optimizer_));
  const Json* position = state.get("loader");
  const Json* saved_step = state.get("step");
  if (position == nullptr || saved_step == nullptr || !saved_step->is_int64()) {
    return absl::DataLossError(absl::StrCat(checkpoint_dir, "/trainer_state.json lacks step or loader position"));
  }
  BF_ASSIGN_OR_RETURN(LoaderPosition loader_position, LoaderPosition::from_json(*position));
  // A run that scaled its loss continues with its scale; one that did not starts the scaler afresh.
  if (const Json* scaler_state = state.get("loss_scale"); loss_scaler_.enabled() && scaler_state != nullptr) {
    BF_RETURN_IF_ERROR(loss_scaler_.restore(*scaler_state));
  }
  const int world_size = communicator_.world_size();
  if (loader_position.world_size != world_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        checkpoint_dir, " was written by a run of ", loader_position.world_size, " rank(s), this one has ",
        world_size, ": resume with the same number of ranks (the data order depends on it), or use a new --out"));
  }
  BF_RETURN_IF_ERROR(train_loader_.restore(loader_position));
  step_ = saved_step->as_int64();
  if (leader()) std::printf("resuming from %s (step %lld)\n", checkpoint_dir.c_str(), static_cast<long long>(step_));
  return absl::OkStatus();
}

void TrainingRun::print_header() const {
  const TrainerConfig& config = config_;
  const int64_t sequences_per_step = config.batch_size * config.grad_accumulation * communicator_.world_size();
  std::printf("bert_train: %lld layers, hidden %lld, %s attention, %lld sequences of %lld tokens per step "
              "(%d rank(s), %s, %s%s), %lld steps\n",
              static_cast<long long>(config.model.num_hidden_layers),
              static_cast<long long>(config.model.hidden_size), attention_variant_name(config.model.attention),
              static_cast<long long>(sequences_per_step), static_cast<long long>(config.seq_len),
              communicator_.world_size(), communicator_.backend_name(), config.device.str().c_str(),
              config.mixed_precision == DType::kF32
                  ? ""
                  : absl::StrCat(", ", dtype_name(config.mixed_precision), " mixed precision").c_str(),
              static_cast<long long>(config.steps));
  if (config.device.is_cpu()) {
    std::printf("bert_train: CPU GEMM paths %s (BERTFORGE_GEMM_ISA forces one)\n", cpu::gemm_paths_summary().c_str());
  }
}

std::optional<float> TrainingRun::clip_alpha_at(int64_t at_step) const {
  if (alpha_warmup_) return alpha_warmup_->alpha_at(std::max<int64_t>(at_step - 1, 0));
  if (config_.model.attention != AttentionVariant::kClippedSoftmax) return std::nullopt;
  return config_.model.clip_alpha;
}

std::pair<std::vector<MlmBatch>, int64_t> TrainingRun::next_batches() {
  std::vector<MlmBatch> batches;
  Tensor labelled = Tensor::zeros({1}, DType::kI64);
  for (int64_t micro = 0; micro < config_.grad_accumulation; ++micro) {
    batches.push_back(train_loader_.next());
    labelled.data<int64_t>()[0] += labelled_tokens(batches.back());
  }
  communicator_.all_reduce(labelled, ReduceOp::kSum);
  return {std::move(batches), labelled.data<int64_t>()[0]};
}

void TrainingRun::backward_and_reduce(const Tensor& loss, float seed, bool reduce_over_ranks) {
  autograd::backward(loss, Tensor::full({}, seed, DType::kF32, config_.device), /*retain_graph=*/false,
                     reduce_over_ranks ? reducer_.start_overlapped_reduction(ReduceOp::kSum) : nullptr);
  if (reduce_over_ranks) reducer_.finish_overlapped_reduction();
}

StepOutcome TrainingRun::train_step() {
  const Clock::time_point start = Clock::now();
  ++step_;
  StepOutcome outcome;
  outcome.clip_alpha = clip_alpha_at(step_);
  model_->set_clip_alpha(outcome.clip_alpha);
  // The step's batches first: their labelled-token counts, summed over ranks, weight the micro-batch losses.
  const auto [batches, step_labelled] = next_batches();
  outcome.loss_scale = loss_scaler_.scale();
  // [this rank's share of the step's mean loss, whether this rank was asked to stop]: one reduction for both.
  Tensor step_loss = Tensor::zeros({2});
  const Device device = config_.device;
  for (int64_t micro = 0; micro < config_.grad_accumulation; ++micro) {
    const MlmBatch& batch = batches[micro];
    const DropoutContext dropout{config_.seed, static_cast<uint64_t>(step_),
                                 static_cast<uint64_t>(communicator_.rank()), static_cast<uint64_t>(micro)};
    const Tensor loss = model_->mlm_loss(batch.input_ids.to(device), batch.token_type_ids.to(device),
                                         batch.attention_mask.to(device), batch.labels.to(device), dropout);
    const float weight =
        step_labelled > 0 ? static_cast<float>(labelled_tokens(batch)) / static_cast<float>(step_labelled) : 0.0f;
    const bool last_micro_batch = micro + 1 == config_.grad_accumulation;
    backward_and_reduce(loss, weight * outcome.loss_scale, last_micro_batch && communicator_.world_size() > 1);
    step_loss.data<float>()[0] += weight * loss.to(Device::cpu()).item<float>();
  }
  step_loss.data<float>()[1] = config_.stop_requested && config_.stop_requested() ? 1.0f : 0.0f;
  communicator_.all_reduce(step_loss, ReduceOp::kSum);
  outcome.loss = step_loss.data<float>()[0];
  outcome.stop_requested = step_loss.data<float>()[1] > 0;
  outcome.lr = schedule_.lr_at(step_);
  outcome.grad_norm = optimizer_.step(outcome.lr, 1.0f / outcome.loss_scale);  // skipped when not finite
  outcome.applied = loss_scaler_.update(std::isfinite(outcome.grad_norm));
  outcome.seconds = seconds_since(start);
  return outcome;
}

absl::Status TrainingRun::log(const StepOutcome& outcome) {
  const int64_t tokens = config_.batch_size * config_.grad_accumulation * communicator_.world_size() * config_.seq_len;
  const double tokens_per_s = static_cast<double>(tokens) / outcome.seconds;
  Json record = Json::object();
  record.set("step", step_);
  record.set("loss", outcome.loss);
  record.set("lr", outcome.lr);
  record.set("grad_norm", outcome.grad_norm);
  record.set("tokens_per_s", tokens_per_s);
  if (loss_scaler_.enabled()) record.set("loss_scale", static_cast<double>(outcome.loss_scale));
  if (outcome.clip_alpha) record.set("clip_alpha", static_cast<double>(*outcome.clip_alpha));
  if (!outcome.applied) {
    record.set("skipped", true);  // gradients not finite: no update
    std::printf("step %lld: gradients not finite (loss scale %g): step skipped%s\n", static_cast<long long>(step_),
                outcome.loss_scale, loss_scaler_.enabled() ? "" : " (the run may be diverging; try a lower --lr)");
  }
  BF_RETURN_IF_ERROR(metrics_.write(record));
  if (step_ % config_.log_interval == 0 || step_ == first_step_ + 1 || step_ == config_.steps) {
    const double mean_step_seconds = seconds_since(run_start_) / static_cast<double>(step_ - first_step_);
    std::string line = progress_line(step_, config_.steps, outcome.loss, outcome.lr, outcome.grad_norm,
                                     tokens_per_s, mean_step_seconds);
    if (alpha_warmup_ && step_ <= alpha_warmup_->steps) absl::StrAppend(&line, "  clip alpha ", *outcome.clip_alpha);
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

absl::Status TrainingRun::evaluate() {
  if (!validation_loader_) return absl::OkStatus();
  const EvalResult eval = bertforge::evaluate(*model_, *validation_loader_, config_.eval_batches);
  const PerplexityResult& result = eval.perplexity;
  const OutlierMetrics& outliers = eval.outliers;
  std::printf("eval  step %lld  validation loss %.4f  perplexity %.2f  (unigram baseline %.2f; %lld masked "
              "tokens)\n",
              static_cast<long long>(step_), result.mean_loss, result.perplexity, unigram_baseline_,
              static_cast<long long>(result.scored_tokens));
  std::printf("      kurtosis avg %.2f max %.2f  inf-norm max FFN out %.2f, FFN i+o %.2f, LN(FFN i+o) %.2f\n",
              outliers.avg_kurtosis, outliers.max_kurtosis, outliers.max_ffn_output_inf_norm,
              outliers.max_ffn_output_plus_residual_inf_norm, outliers.max_layer_output_inf_norm);
  std::printf("      RMS kurtosis avg %.2f max %.2f  attention sink share %.2f (max %.2f), special-token mass %.3f\n",
              outliers.avg_rms_kurtosis, outliers.max_rms_kurtosis, outliers.mean_sink_share,
              outliers.max_sink_share, outliers.mean_special_token_mass);
  Json record = Json::object();
  record.set("step", step_);
  record.set("val_loss", result.mean_loss);
  record.set("val_perplexity", result.perplexity);
  record.set("val_unigram_perplexity", unigram_baseline_);
  record.set("val_avg_kurtosis", outliers.avg_kurtosis);
  record.set("val_max_kurtosis", outliers.max_kurtosis);
  record.set("val_max_ffn_output_inf_norm", outliers.max_ffn_output_inf_norm);
  record.set("val_max_ffn_output_plus_residual_inf_norm", outliers.max_ffn_output_plus_residual_inf_norm);
  record.set("val_max_layer_output_inf_norm", outliers.max_layer_output_inf_norm);
  record.set("val_avg_rms_kurtosis", outliers.avg_rms_kurtosis);
  record.set("val_max_rms_kurtosis", outliers.max_rms_kurtosis);
  record.set("val_sink_share", outliers.mean_sink_share);
  record.set("val_max_sink_share", outliers.max_sink_share);
  record.set("val_special_token_mass", outliers.mean_special_token_mass);
  if (config_.model.attention == AttentionVariant::kClippedSoftmax) {
    record.set("val_dead_row_fraction", outliers.mean_dead_row_fraction);
    // A probability survives the clip only above -gamma / (zeta - gamma); below it the output is exactly 0
    // and its gradient is zero, so a row with every entry clipped passes no gradient to Q and K.
    if (outliers.max_dead_row_fraction > 0.5) {
      std::printf("warning: step %lld: %.0f%% of the attention rows of a layer are clipped to 0 everywhere: every "
                  "probability is below the clip threshold -gamma/(zeta-gamma), so Q and K get no gradient (what "
                  "trains a small model at alpha 3.2: --attention_init reference with an alpha warm-up, "
                  "--clip_alpha_warmup_steps; README, \"Training clipped softmax\")\n",
                  static_cast<long long>(step_), 100.0 * outliers.max_dead_row_fraction);
    }
  }
  return metrics_.write(record);
}

absl::Status TrainingRun::checkpoint() {
  Json state = Json::object();
  state.set("step", step_);
  state.set("loader", train_loader_.position().to_json());
  if (loss_scaler_.enabled()) state.set("loss_scale", loss_scaler_.state());
  state.set("run", run_identity(config_));
  BF_RETURN_IF_ERROR(save_checkpoint(config_.run_dir, step_, model_->state_dict(), optimizer_, state));
  last_checkpoint_step_ = step_;
  return absl::OkStatus();
}

absl::Status TrainingRun::end_stopped() {
  if (leader() && last_checkpoint_step_ != step_) BF_RETURN_IF_ERROR(checkpoint());
  communicator_.barrier();
  return absl::CancelledError(absl::StrCat("stopped at step ", step_, " of ", config_.steps,
                                           " as asked, checkpoint written (", config_.run_dir,
                                           "/checkpoints/latest): run the same command to continue"));
}

absl::Status TrainingRun::finish() {
  if (leader()) {
    BF_RETURN_IF_ERROR(evaluate());
    BF_RETURN_IF_ERROR(checkpoint());
    std::printf("done: checkpoint %s/checkpoints/latest, metrics %s/metrics.jsonl\n", config_.run_dir.c_str(),
                config_.run_dir.c_str());
  }
  communicator_.barrier();  // every rank ends after the final checkpoint
  return absl::OkStatus();
}

}  // namespace

absl::Status TrainerConfig::validate() const {
  BF_RETURN_IF_ERROR(model.validate());
  BF_RETURN_IF_ERROR(vocab.validate());
  BF_RETURN_IF_ERROR(loss_scale.validate());
  if (mixed_precision != DType::kF32 && mixed_precision != DType::kBF16 && mixed_precision != DType::kF16) {
    return invalid(absl::StrCat("mixed precision in ", dtype_name(mixed_precision), ": bf16, f16 or f32 (off)"));
  }
  if (vocab.size != model.vocab_size) {
    return invalid(absl::StrCat("the data's vocabulary has ", vocab.size, " tokens but the model's vocab_size is ",
                                model.vocab_size));
  }
  if (seq_len < 3 || seq_len > model.max_position_embeddings) {
    return invalid(absl::StrCat("--seq_len must be in [3, ", model.max_position_embeddings, "], got ", seq_len));
  }
  if (batch_size < 1 || grad_accumulation < 1 || steps < 1) {
    return invalid("--batch_size, --grad_accumulation and --steps must be at least 1");
  }
  if (warmup_steps < 0 || warmup_steps > steps) return invalid("--warmup_steps must be in [0, --steps]");
  if (!(lr > 0) || weight_decay < 0 || max_grad_norm < 0 || !(adam_eps > 0)) {
    return invalid("--lr and --adam_eps must be positive, --weight_decay and --max_grad_norm non-negative");
  }
  if (clip_alpha_warmup_steps < 0) return invalid("--clip_alpha_warmup_steps must be >= 0");
  if (clip_alpha_warmup_steps > 0 &&
      (model.attention != AttentionVariant::kClippedSoftmax || !model.clip_alpha.has_value())) {
    return invalid("--clip_alpha_warmup_steps ramps the clipped softmax alpha up to the model's: it needs "
                   "--attention clipped_softmax with --clip_alpha (the target)");
  }
  if (clip_alpha_warmup_start.has_value()) {
    if (clip_alpha_warmup_steps == 0) return invalid("--clip_alpha_warmup_start needs --clip_alpha_warmup_steps");
    if (!(*clip_alpha_warmup_start >= 0.0f && std::isfinite(*clip_alpha_warmup_start))) {
      return invalid(absl::StrCat("--clip_alpha_warmup_start must be finite and >= 0, got ",
                                  *clip_alpha_warmup_start));
    }
  }
  if (log_interval < 1 || eval_interval < 0 || eval_batches < 0 || checkpoint_interval < 0 || stop_after < 0) {
    return invalid("intervals must be non-negative (--log_interval at least 1)");
  }
  if (train_data.empty() || run_dir.empty()) return invalid("--data and --out are required");
  return absl::OkStatus();
}

absl::StatusOr<DType> parse_mixed_precision(absl::string_view name) {
  if (name == "none") return DType::kF32;
  if (name == "bf16") return DType::kBF16;
  if (name == "fp16") return DType::kF16;
  return invalid(absl::StrCat("--mixed_precision '", name, "': none, bf16 or fp16"));
}

std::optional<ClipAlphaWarmup> TrainerConfig::clip_alpha_warmup() const {
  if (clip_alpha_warmup_steps == 0) return std::nullopt;
  return ClipAlphaWarmup{clip_alpha_warmup_start.value_or(uniform_threshold_clip_alpha(model.clip_zeta, seq_len)),
                         *model.clip_alpha, clip_alpha_warmup_steps};
}

absl::Status train_bert(const TrainerConfig& config) {
  SingleProcessCommunicator single_process;
  return train_bert(config, single_process);
}

absl::Status train_bert(const TrainerConfig& config, Communicator& communicator) {
  BF_RETURN_IF_ERROR(config.validate());
  BF_ASSIGN_OR_RETURN(const std::unique_ptr<TrainingRun> run, TrainingRun::start(config, communicator));
  // Every forward pass of the run, training and evaluation, in the run's precision (backward follows forward).
  const AutocastGuard precision_guard(config.mixed_precision);
  auto due = [&](int64_t interval) { return interval > 0 && run->step() % interval == 0; };
  const int64_t first_step = run->step();
  while (run->step() < config.steps) {
    if (config.stop_after > 0 && run->step() - first_step >= config.stop_after) return absl::OkStatus();
    const StepOutcome outcome = run->train_step();
    if (run->leader()) BF_RETURN_IF_ERROR(run->log(outcome));
    if (outcome.stop_requested) return run->end_stopped();
    if (run->step() == config.steps || !run->leader()) continue;  // the final evaluation and checkpoint follow
    if (due(config.eval_interval)) BF_RETURN_IF_ERROR(run->evaluate());
    if (due(config.checkpoint_interval)) BF_RETURN_IF_ERROR(run->checkpoint());
  }
  return run->finish();
}

}  // namespace bertforge
