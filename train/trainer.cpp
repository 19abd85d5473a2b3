// The pretraining loop: one optimizer step = grad_accumulation micro-batches on every rank.
#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "autograd/engine.h"
#include "core/file_io.h"
#include "core/json_diff.h"
#include "models/bert.h"
#include "models/pretrained_weights.h"
#include "ops/autocast.h"
#include "ops/cpu/gemm.h"
#include "train/checkpoint.h"
#include "train/clip_alpha_warmup.h"
#include "train/communicator_buckets.h"
#include "train/data_loader.h"
#include "train/evaluation.h"
#include "train/metrics_log.h"
#include "train/optimizer.h"

namespace bertforge {
namespace {

absl::Status invalid(absl::string_view what) { return absl::InvalidArgumentError(std::string(what)); }

// The run's clipped softmax alpha warm-up; nullopt when off. The config must be valid.
std::optional<ClipAlphaWarmup> clip_alpha_warmup(const TrainerConfig& config) {
  if (config.clip_alpha_warmup_steps == 0) return std::nullopt;
  return ClipAlphaWarmup{
      config.clip_alpha_warmup_start.value_or(uniform_threshold_clip_alpha(config.model.clip_zeta, config.seq_len)),
      *config.model.clip_alpha, config.clip_alpha_warmup_steps};
}

// What must not change between a checkpoint and the run that resumes from it. The alpha warm-up is there only
// when on, so runs from before it existed still match.
Json run_identity(const TrainerConfig& config) {
  Json identity = Json::object();
  identity.set("model", config.model.to_json());
  identity.set("seq_len", config.seq_len);
  identity.set("batch_size", config.batch_size);
  identity.set("grad_accumulation", config.grad_accumulation);
  identity.set("seed", absl::StrCat(config.seed));
  if (const std::optional<ClipAlphaWarmup> warmup = clip_alpha_warmup(config)) {
    Json schedule = Json::object();
    schedule.set("steps", warmup->steps);
    schedule.set("start", static_cast<double>(warmup->start));
    identity.set("clip_alpha_warmup", std::move(schedule));
  }
  return identity;
}

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

// Every rank must train the same run from the same step: compares each rank's (config, first step) with rank 0's.
absl::Status check_ranks_agree(Communicator& communicator, const TrainerConfig& config, int64_t first_step) {
  const int64_t fingerprint =
      static_cast<int64_t>(std::hash<std::string>{}(run_identity(config).dump() + config.train_data));
  Tensor rank0 = Tensor::from_vector(std::vector<int64_t>{fingerprint, first_step}, {2});
  communicator.broadcast(rank0, 0);
  if (rank0.data<int64_t>()[0] != fingerprint) {
    return invalid(absl::StrCat("rank ", communicator.rank(), " was started with another model, batch, seed or "
                                "data than rank 0: every rank needs the same flags"));
  }
  if (rank0.data<int64_t>()[1] != first_step) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rank ", communicator.rank(), " would start at step ", first_step, " but rank 0 at step ",
        rank0.data<int64_t>()[1], ": every rank must see the same checkpoints under --out (a shared file system "
        "across nodes)"));
  }
  return absl::OkStatus();
}

// The checkpoint this run continues from (nullopt: a new run), after applying config.existing_run to what
// run_dir holds. Only the leader deletes anything.
absl::StatusOr<std::optional<std::string>> checkpoint_to_resume(const TrainerConfig& config, bool leader) {
  if (config.existing_run == ExistingRun::kReplace) {
    if (leader) BF_RETURN_IF_ERROR(remove_checkpoints(config.run_dir));
    return std::nullopt;
  }
  absl::StatusOr<std::string> latest = latest_checkpoint(config.run_dir);
  if (!latest.ok()) {
    if (latest.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
    return latest.status();
  }
  if (config.existing_run == ExistingRun::kRefuse) {
    return absl::FailedPreconditionError(absl::StrCat(
        config.run_dir, " already holds a run (latest checkpoint ", std::filesystem::path(*latest).filename().string(),
        "): to start over there and delete its checkpoints pass --overwrite, to continue it drop --noresume, or "
        "use another --out"));
  }
  BF_ASSIGN_OR_RETURN(const Json saved_state, read_trainer_state(*latest));
  const Json* identity = saved_state.get("run");
  if (identity == nullptr) {
    return absl::DataLossError(absl::StrCat(*latest, "/trainer_state.json lacks the run's settings (\"run\")"));
  }
  const std::vector<JsonDifference> differences = json_differences(*identity, run_identity(config));
  if (!differences.empty()) {
    return invalid(absl::StrCat(*latest, " belongs to a run with other settings (checkpoint -> this command: ",
                                describe_differences(differences), "); continue it with its settings, start over "
                                "with --overwrite (deletes its checkpoints), or use another --out"));
  }
  return *latest;
}

// What makes the run directory self-describing: the flags that started it and the vocabulary of its data.
absl::Status write_run_records(const TrainerConfig& config) {
  std::error_code error;
  std::filesystem::create_directories(config.run_dir, error);
  if (error) return absl::InternalError(absl::StrCat("cannot create ", config.run_dir, ": ", error.message()));
  if (!config.flags_record.empty()) {
    BF_RETURN_IF_ERROR(write_file_atomic(config.run_dir + "/flags", config.flags_record));
  }
  if (!config.vocab_file.empty()) {
    BF_ASSIGN_OR_RETURN(const std::string vocab, read_file(config.vocab_file));
    BF_RETURN_IF_ERROR(write_file_atomic(config.run_dir + "/vocab.txt", vocab));
  }
  return absl::OkStatus();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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

absl::Status train_bert(const TrainerConfig& config) {
  SingleProcessCommunicator single_process;
  return train_bert(config, single_process);
}

absl::Status train_bert(const TrainerConfig& config, Communicator& communicator) {
  BF_RETURN_IF_ERROR(config.validate());
  const int rank = communicator.rank(), world_size = communicator.world_size();
  const bool leader = rank == 0;  // evaluates, prints, writes
  BF_ASSIGN_OR_RETURN(DataLoader train_loader,
                      open_loader(config.train_data, config, /*shuffle=*/true, rank, world_size));
  std::optional<DataLoader> validation_loader;
  if (leader && !config.validation_data.empty()) {
    BF_ASSIGN_OR_RETURN(validation_loader, open_loader(config.validation_data, config, /*shuffle=*/false, 0, 1));
  }
  BF_ASSIGN_OR_RETURN(const std::optional<std::string> resume_from, checkpoint_to_resume(config, leader));
  if (leader) BF_RETURN_IF_ERROR(write_run_records(config));

  BertForMaskedLM model(config.model, config.seed);
  if (!resume_from && !config.init_from.empty()) {
    BF_ASSIGN_OR_RETURN(const PretrainedLoad loaded, load_pretrained_weights(config.init_from, model));
    if (leader) {
      std::printf("initialised from %s (%s%s)\n", config.init_from.c_str(), loaded.layout.describe().c_str(),
                  loaded.fresh.empty() ? "" : "; the MLM head starts freshly initialised");
    }
  }
  model.to(config.device);  // before the optimizer, whose state is made beside the parameters
  model.train();
  // Every forward pass of the run, training and evaluation, in the run's precision (backward follows forward).
  const AutocastGuard precision_guard(config.mixed_precision);
  const NamedTensors parameters = model.named_parameters();
  OptimizerConfig optimizer_config;
  optimizer_config.adamw.weight_decay = config.weight_decay;
  optimizer_config.adamw.eps = config.adam_eps;
  optimizer_config.max_grad_norm = config.max_grad_norm;
  AdamWOptimizer optimizer(parameters, optimizer_config);
  const LrSchedule schedule{config.lr, config.warmup_steps, config.steps};
  BucketedReducer reducer(communicator, parameters);
  LossScaler loss_scaler(config.loss_scale);

  int64_t step = 0;
  if (resume_from) {
    const std::string& latest = *resume_from;
    BF_ASSIGN_OR_RETURN(const Json state, load_checkpoint(latest, parameters, optimizer));
    const Json* position = state.get("loader");
    const Json* saved_step = state.get("step");
    if (position == nullptr || saved_step == nullptr || !saved_step->is_int64()) {
      return absl::DataLossError(absl::StrCat(latest, "/trainer_state.json lacks step or loader position"));
    }
    BF_ASSIGN_OR_RETURN(LoaderPosition loader_position, LoaderPosition::from_json(*position));
    // A run that scaled its loss continues with its scale; one that did not starts the scaler afresh.
    if (const Json* scaler_state = state.get("loss_scale"); loss_scaler.enabled() && scaler_state != nullptr) {
      BF_RETURN_IF_ERROR(loss_scaler.restore(*scaler_state));
    }
    if (loader_position.world_size != world_size) {
      return absl::FailedPreconditionError(absl::StrCat(
          latest, " was written by a run of ", loader_position.world_size, " rank(s), this one has ", world_size,
          ": resume with the same number of ranks (the data order depends on it), or use a new --out"));
    }
    BF_RETURN_IF_ERROR(train_loader.restore(loader_position));
    step = saved_step->as_int64();
    if (leader) std::printf("resuming from %s (step %lld)\n", latest.c_str(), static_cast<long long>(step));
  }
  if (world_size > 1) {
    BF_RETURN_IF_ERROR(check_ranks_agree(communicator, config, step));
    reducer.broadcast_parameters(0);  // identical initial weights, whatever each rank's initialisation did
  }
  MetricsLog metrics;
  if (leader) {
    BF_RETURN_IF_ERROR(config.model.save(config.run_dir + "/config.json"));
    BF_RETURN_IF_ERROR(metrics.open(config.run_dir + "/metrics.jsonl", step > 0 ? step : -1));
  }

  // The perplexity a model that ignores context cannot beat, on the evaluation batches: the yardstick printed
  // beside the validation perplexity.
  const double unigram_baseline =
      validation_loader ? unigram_perplexity(*validation_loader, config.model.vocab_size, config.eval_batches) : 0.0;
  auto run_evaluation = [&](int64_t at_step) -> absl::Status {
    if (!validation_loader) return absl::OkStatus();
    const EvalResult eval = evaluate(model, *validation_loader, config.eval_batches);
    const PerplexityResult& result = eval.perplexity;
    const OutlierMetrics& outliers = eval.outliers;
    std::printf("eval  step %lld  validation loss %.4f  perplexity %.2f  (unigram baseline %.2f; %lld masked "
                "tokens)\n",
                static_cast<long long>(at_step), result.mean_loss, result.perplexity, unigram_baseline,
                static_cast<long long>(result.scored_tokens));
    std::printf("      kurtosis avg %.2f max %.2f  inf-norm max FFN out %.2f, FFN i+o %.2f, LN(FFN i+o) %.2f\n",
                outliers.avg_kurtosis, outliers.max_kurtosis, outliers.max_ffn_output_inf_norm,
                outliers.max_ffn_output_plus_residual_inf_norm, outliers.max_layer_output_inf_norm);
    std::printf("      RMS kurtosis avg %.2f max %.2f  attention sink share %.2f (max %.2f), special-token mass %.3f\n",
                outliers.avg_rms_kurtosis, outliers.max_rms_kurtosis, outliers.mean_sink_share,
                outliers.max_sink_share, outliers.mean_special_token_mass);
    Json record = Json::object();
    record.set("step", at_step);
    record.set("val_loss", result.mean_loss);
    record.set("val_perplexity", result.perplexity);
    record.set("val_unigram_perplexity", unigram_baseline);
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
    if (config.model.attention == AttentionVariant::kClippedSoftmax) {
      record.set("val_dead_row_fraction", outliers.mean_dead_row_fraction);
      // A probability survives the clip only above -gamma / (zeta - gamma); below it the output is exactly 0
      // and its gradient is zero, so a row with every entry clipped passes no gradient to Q and K.
      if (outliers.max_dead_row_fraction > 0.5) {
        std::printf("warning: step %lld: %.0f%% of the attention rows of a layer are clipped to 0 everywhere: every "
                    "probability is below the clip threshold -gamma/(zeta-gamma), so Q and K get no gradient "
                    "(try a smaller |gamma| or alpha)\n",
                    static_cast<long long>(at_step), 100.0 * outliers.max_dead_row_fraction);
      }
    }
    return metrics.write(record);
  };
  int64_t last_checkpoint_step = step;
  auto checkpoint = [&](int64_t at_step) -> absl::Status {
    Json state = Json::object();
    state.set("step", at_step);
    state.set("loader", train_loader.position().to_json());
    if (loss_scaler.enabled()) state.set("loss_scale", loss_scaler.state());
    state.set("run", run_identity(config));
    BF_RETURN_IF_ERROR(save_checkpoint(config.run_dir, at_step, model.state_dict(), optimizer, state));
    last_checkpoint_step = at_step;
    return absl::OkStatus();
  };

  const int64_t sequences_per_step = config.batch_size * config.grad_accumulation * world_size;
  if (leader) {
    std::printf("bert_train: %lld layers, hidden %lld, %s attention, %lld sequences of %lld tokens per step "
                "(%d rank(s), %s, %s%s), %lld steps\n",
                static_cast<long long>(config.model.num_hidden_layers),
                static_cast<long long>(config.model.hidden_size), attention_variant_name(config.model.attention),
                static_cast<long long>(sequences_per_step), static_cast<long long>(config.seq_len), world_size,
                communicator.backend_name(), config.device.str().c_str(),
                config.mixed_precision == DType::kF32
                    ? ""
                    : absl::StrCat(", ", dtype_name(config.mixed_precision), " mixed precision").c_str(),
                static_cast<long long>(config.steps));
    if (config.device.is_cpu()) {
      std::printf("bert_train: CPU GEMM paths %s (BERTFORGE_GEMM_ISA forces one)\n", cpu::gemm_paths_summary().c_str());
    }
  }
  // The clipped softmax alpha that step `at_step` trains with and the evaluation after it uses: the warm-up's or
  // the model's; nullopt for the other variants and for a fixed gamma. The model is given it before each step.
  const std::optional<ClipAlphaWarmup> alpha_warmup = clip_alpha_warmup(config);
  auto clip_alpha_at = [&](int64_t at_step) -> std::optional<float> {
    if (alpha_warmup) return alpha_warmup->alpha_at(std::max<int64_t>(at_step - 1, 0));
    if (config.model.attention != AttentionVariant::kClippedSoftmax) return std::nullopt;
    return config.model.clip_alpha;
  };
  model.set_clip_alpha(clip_alpha_at(step));  // for the final evaluation of a run resumed at its end
  const int64_t first_step = step;
  const auto run_start = std::chrono::steady_clock::now();
  bool stop = false;  // a stop was requested on some rank: end after this step, with a checkpoint
  while (step < config.steps && !stop) {
    if (config.stop_after > 0 && step - first_step >= config.stop_after) return absl::OkStatus();
    ++step;
    const std::optional<float> clip_alpha = clip_alpha_at(step);
    model.set_clip_alpha(clip_alpha);
    const auto step_start = std::chrono::steady_clock::now();
    // The step's batches first: their labelled-token counts, summed over ranks, weight the micro-batch losses.
    std::vector<MlmBatch> batches;
    Tensor step_labelled = Tensor::zeros({1}, DType::kI64);
    for (int64_t micro = 0; micro < config.grad_accumulation; ++micro) {
      batches.push_back(train_loader.next());
      step_labelled.data<int64_t>()[0] += labelled_tokens(batches.back());
    }
    communicator.all_reduce(step_labelled, ReduceOp::kSum);
    const int64_t total_labelled = step_labelled.data<int64_t>()[0];
    // [this rank's share of the step's mean loss, whether this rank was asked to stop]: one reduction for both.
    Tensor step_loss = Tensor::zeros({2});
    const float loss_scale = loss_scaler.scale();  // backward starts from the loss times this (1 without scaling)
    for (int64_t micro = 0; micro < config.grad_accumulation; ++micro) {
      const MlmBatch& batch = batches[micro];
      const DropoutContext dropout{config.seed, static_cast<uint64_t>(step), static_cast<uint64_t>(rank),
                                   static_cast<uint64_t>(micro)};
      const Device device = config.device;
      const Tensor loss = model.mlm_loss(batch.input_ids.to(device), batch.token_type_ids.to(device),
                                         batch.attention_mask.to(device), batch.labels.to(device), dropout);
      const float weight = total_labelled > 0 ? static_cast<float>(labelled_tokens(batch)) /
                                                    static_cast<float>(total_labelled)
                                              : 0.0f;
      // The step's last backward pass reduces each bucket of gradients over the ranks as soon as it is final.
      const bool reduce_now = world_size > 1 && micro + 1 == config.grad_accumulation;
      autograd::backward(loss, Tensor::full({}, weight * loss_scale, DType::kF32, device), /*retain_graph=*/false,
                         reduce_now ? reducer.start_overlapped_reduction(ReduceOp::kSum) : nullptr);
      if (reduce_now) reducer.finish_overlapped_reduction();
      step_loss.data<float>()[0] += weight * loss.to(Device::cpu()).item<float>();
    }
    step_loss.data<float>()[1] = config.stop_requested && config.stop_requested() ? 1.0f : 0.0f;
    communicator.all_reduce(step_loss, ReduceOp::kSum);
    stop = step_loss.data<float>()[1] > 0;
    const int64_t tokens = sequences_per_step * config.seq_len;
    const float lr = schedule.lr_at(step);
    const float grad_norm = optimizer.step(lr, 1.0f / loss_scale);  // skipped when not finite
    const bool applied = loss_scaler.update(std::isfinite(grad_norm));
    const double loss = step_loss.data<float>()[0];
    const double step_seconds = seconds_since(step_start);
    const double mean_step_seconds = seconds_since(run_start) / static_cast<double>(step - first_step);
    if (!leader) continue;

    Json record = Json::object();
    record.set("step", step);
    record.set("loss", loss);
    record.set("lr", lr);
    record.set("grad_norm", grad_norm);
    record.set("tokens_per_s", static_cast<double>(tokens) / step_seconds);
    if (loss_scaler.enabled()) record.set("loss_scale", static_cast<double>(loss_scale));
    if (clip_alpha) record.set("clip_alpha", static_cast<double>(*clip_alpha));
    if (!applied) {
      record.set("skipped", true);  // gradients not finite: no update
      std::printf("step %lld: gradients not finite (loss scale %g): step skipped%s\n", static_cast<long long>(step),
                  loss_scale, loss_scaler.enabled() ? "" : " (the run may be diverging; try a lower --lr)");
    }
    BF_RETURN_IF_ERROR(metrics.write(record));
    if (step % config.log_interval == 0 || step == first_step + 1 || step == config.steps) {
      std::string line = progress_line(step, config.steps, loss, lr, grad_norm,
                                       static_cast<double>(tokens) / step_seconds, mean_step_seconds);
      if (alpha_warmup && step <= alpha_warmup->steps) absl::StrAppend(&line, "  clip alpha ", *clip_alpha);
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    }
    if (stop) break;
    if (config.eval_interval > 0 && step % config.eval_interval == 0 && step != config.steps) {
      BF_RETURN_IF_ERROR(run_evaluation(step));
    }
    if (config.checkpoint_interval > 0 && step % config.checkpoint_interval == 0 && step != config.steps) {
      BF_RETURN_IF_ERROR(checkpoint(step));
    }
  }
  if (stop) {
    if (leader && last_checkpoint_step != step) BF_RETURN_IF_ERROR(checkpoint(step));
    communicator.barrier();
    return absl::CancelledError(absl::StrCat(
        "stopped at step ", step, " of ", config.steps, " as asked, checkpoint written (", config.run_dir,
        "/checkpoints/latest): run the same command to continue"));
  }
  if (leader) {
    BF_RETURN_IF_ERROR(run_evaluation(step));
    BF_RETURN_IF_ERROR(checkpoint(step));
    std::printf("done: checkpoint %s/checkpoints/latest, metrics %s/metrics.jsonl\n", config.run_dir.c_str(),
                config.run_dir.c_str());
  }
  communicator.barrier();  // every rank ends after the final checkpoint
  return absl::OkStatus();
}

}  // namespace bertforge
