// The pretraining loop end to end on a synthetic language: the loss falls, the
// validation perplexity ends far below the unigram baseline, a run killed after a
// checkpoint or stopped on request and then continued logs exactly the losses of an
// uninterrupted run (also in the middle of a clipped softmax alpha warm-up), existing
// runs are continued, refused or replaced as asked, and a run can start from another's
// weights.
#include "train/trainer.h"

#include <cmath>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "core/file_io.h"
#include "core/json.h"
#include "tests/support/test_support.h"
#include "train/checkpoint.h"
#include "train/clip_alpha_warmup.h"
#include "train/data_loader.h"
#include "train/evaluation.h"
#include "train/token_shard.h"

namespace bertforge {
namespace {

constexpr uint32_t kRegular = 40;  // ids 5..44; 0..4 are the specials
const MlmVocab kVocab{/*size=*/45, /*pad=*/0, /*unk=*/1, /*cls=*/2, /*sep=*/3, /*mask=*/4};

// A document of the synthetic language: each token determines the next
// (t' = 3t + 1 mod 40), so context predicts a masked token exactly, while the
// unigram distribution is nearly uniform.
std::vector<uint32_t> document(uint32_t first, int length) {
  std::vector<uint32_t> ids;
  uint32_t t = first % kRegular;
  for (int i = 0; i < length; ++i) {
    ids.push_back(5 + t);
    t = (3 * t + 1) % kRegular;
  }
  return ids;
}

absl::Status write_corpus(const std::string& path, int documents, uint32_t salt) {
  ShardWriter writer;
  BF_RETURN_IF_ERROR(writer.open(path, kVocab.size));
  for (int d = 0; d < documents; ++d) {
    BF_RETURN_IF_ERROR(writer.add_document(document(d * 7 + salt, 20 + (d * 13) % 50)));
  }
  return writer.close();
}

class Trainer : public test_support::TempDirTest {
 protected:
  Trainer() : TempDirTest("trainer") {}

  void SetUp() override {
    TempDirTest::SetUp();
    ASSERT_TRUE(write_corpus(path("train.zst"), 300, 0).ok());
    ASSERT_TRUE(write_corpus(path("valid.zst"), 40, 3).ok());
  }

  TrainerConfig config(const std::string& run) {
    TrainerConfig c;
    c.model = BertConfig::tiny();
    c.model.vocab_size = kVocab.size;
    c.model.hidden_size = 32;
    c.model.num_attention_heads = 2;
    c.model.intermediate_size = 64;
    c.model.max_position_embeddings = 32;
    c.vocab = kVocab;
    c.train_data = path("train.zst");
    c.validation_data = path("valid.zst");
    c.run_dir = path(run);
    c.seq_len = 32;
    c.batch_size = 8;
    c.steps = 600;
    c.warmup_steps = 10;
    c.lr = 3e-3f;
    c.seed = 7;
    c.log_interval = 200;
    c.eval_interval = 0;
    c.eval_batches = 0;
    c.checkpoint_interval = 0;
    return c;
  }

  // step -> loss of every training record in a run's metrics.jsonl
  std::map<int64_t, double> losses(const std::string& run) {
    std::map<int64_t, double> out;
    for (absl::string_view line : absl::StrSplit(*read_file(path(run + "/metrics.jsonl")), '\n', absl::SkipEmpty())) {
      const Json record = *Json::parse(line);
      if (record.get("loss") != nullptr) out[record.get("step")->as_int64()] = record.get("loss")->as_number();
    }
    return out;
  }

  // `straight` (run dir "straight", 24 steps, a checkpoint every 10) has run to the end; the same run in "killed",
  // stopped after 14 steps (4 after the step-10 checkpoint) and then continued, must log exactly its losses.
  // Returns the killed run's config.
  TrainerConfig expect_killed_run_continues_on_the_same_losses(const TrainerConfig& straight) {
    TrainerConfig killed = straight;
    killed.run_dir = path("killed");
    killed.stop_after = 14;
    EXPECT_TRUE(train_bert(killed).ok());
    EXPECT_EQ(losses("killed").size(), 14u);
    killed.stop_after = 0;
    EXPECT_TRUE(train_bert(killed).ok());  // resumes from step 10
    const std::map<int64_t, double> a = losses("straight"), b = losses("killed");
    EXPECT_EQ(a.size(), 24u);
    EXPECT_EQ(b.size(), 24u);
    for (const auto& [step, loss] : a) EXPECT_EQ(b.count(step) ? b.at(step) : -1.0, loss) << "step " << step;
    return killed;
  }
};

TEST_F(Trainer, LearnsTheSyntheticLanguage) {
  const TrainerConfig c = config("run");
  ASSERT_TRUE(train_bert(c).ok());
  const std::map<int64_t, double> loss = losses("run");
  ASSERT_EQ(loss.size(), 600u);
  EXPECT_NEAR(loss.at(1), std::log(45.0), 0.5);  // starts near uniform over the vocabulary
  EXPECT_LT(loss.at(600), 0.6 * loss.at(1));

  // The final validation perplexity is far below what token frequencies alone give.
  DataLoaderOptions options;
  options.max_seq_len = c.seq_len;
  options.batch_size = c.batch_size;
  options.seed = c.seed;
  options.shuffle = false;
  DataLoader validation = *DataLoader::open({path("valid.zst")}, kVocab, options);
  const double unigram = unigram_perplexity(validation, kVocab.size);
  double final_perplexity = 0;
  for (absl::string_view line : absl::StrSplit(*read_file(path("run/metrics.jsonl")), '\n', absl::SkipEmpty())) {
    const Json record = *Json::parse(line);
    if (record.get("val_perplexity") != nullptr) final_perplexity = record.get("val_perplexity")->as_number();
  }
  EXPECT_GT(unigram, 30.0);
  EXPECT_GT(final_perplexity, 1.0);
  EXPECT_LT(final_perplexity, 0.5 * unigram) << "unigram perplexity " << unigram;
}

TEST_F(Trainer, InterruptedRunsContinueOnTheSameLosses) {
  TrainerConfig straight = config("straight");
  straight.steps = 24;
  straight.checkpoint_interval = 10;
  ASSERT_TRUE(train_bert(straight).ok());

  const TrainerConfig killed = expect_killed_run_continues_on_the_same_losses(straight);

  // A stop requested mid-run (Ctrl-C in bert_train) ends the run after the step in progress with a checkpoint of
  // it, and continuing from there also logs exactly the uninterrupted run's losses.
  TrainerConfig stopped = straight;
  stopped.run_dir = path("stopped");
  int asked = 0;
  stopped.stop_requested = [&asked] { return ++asked == 13; };  // asked after every step: stops after step 13
  absl::Status stop = train_bert(stopped);
  EXPECT_EQ(stop.code(), absl::StatusCode::kCancelled) << stop;
  EXPECT_NE(stop.message().find("stopped at step 13 of 24"), absl::string_view::npos) << stop.message();
  EXPECT_EQ(losses("stopped").size(), 13u);
  absl::StatusOr<std::string> latest = latest_checkpoint(path("stopped"));
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(read_trainer_state(*latest)->get("step")->as_int64(), 13);
  stopped.stop_requested = nullptr;
  ASSERT_TRUE(train_bert(stopped).ok());  // continues from step 13
  const std::map<int64_t, double> a = losses("straight"), c = losses("stopped");
  ASSERT_EQ(c.size(), 24u);
  for (const auto& [step, loss] : a) EXPECT_EQ(c.at(step), loss) << "step " << step;

  // A resume with another model and seed into the same directory is refused, naming what differs.
  TrainerConfig other = killed;
  other.model.intermediate_size = 32;
  other.seed = 8;
  absl::Status status = train_bert(other);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("model.intermediate_size 64 -> 32, seed \"7\" -> \"8\""), absl::string_view::npos)
      << status.message();
}

// A new run where a run exists: refused unless asked to replace it; replacing deletes the old checkpoints first
// (so none of them can outlive the new run's pruning, whatever their steps).
TEST_F(Trainer, ANewRunReplacesAnExistingOneOnlyWhenAskedTo) {
  TrainerConfig first = config("run");
  first.steps = 12;
  first.checkpoint_interval = 4;
  ASSERT_TRUE(train_bert(first).ok());
  ASSERT_TRUE(std::filesystem::exists(path("run/checkpoints/step-00000008")));

  TrainerConfig fresh = first;
  fresh.steps = 3;
  fresh.warmup_steps = 0;
  fresh.existing_run = ExistingRun::kRefuse;
  absl::Status status = train_bert(fresh);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("--overwrite"), absl::string_view::npos) << status.message();
  EXPECT_EQ(losses("run").size(), 12u);  // untouched
  EXPECT_EQ(std::filesystem::path(*latest_checkpoint(path("run"))).filename(), "step-00000012");

  fresh.existing_run = ExistingRun::kReplace;
  ASSERT_TRUE(train_bert(fresh).ok());
  EXPECT_EQ(losses("run").size(), 3u);
  EXPECT_EQ(std::filesystem::path(*latest_checkpoint(path("run"))).filename(), "step-00000003");
  EXPECT_FALSE(std::filesystem::exists(path("run/checkpoints/step-00000012")));
  EXPECT_FALSE(std::filesystem::exists(path("run/checkpoints/step-00000008")));
  // The run is usable afterwards: continuing it to 6 steps works.
  fresh.existing_run = ExistingRun::kResume;
  fresh.steps = 6;
  ASSERT_TRUE(train_bert(fresh).ok());
  EXPECT_EQ(losses("run").size(), 6u);
}

// Continued pretraining: a run started from another run's final weights begins at that run's loss, not at the
// uniform loss log(45) of a random model; and the run directory records the flags and the vocabulary.
TEST_F(Trainer, InitFromStartsAtThePretrainedModel) {
  TrainerConfig pretrain = config("pretrain");
  pretrain.steps = 400;
  ASSERT_TRUE(train_bert(pretrain).ok());
  const double random_loss = losses("pretrain").at(1), pretrained_loss = losses("pretrain").at(400);
  ASSERT_LT(pretrained_loss, random_loss - 1.0);

  TrainerConfig continued = config("continued");
  continued.steps = 2;
  continued.warmup_steps = 0;
  continued.lr = 1e-6f;
  continued.init_from = *latest_checkpoint(path("pretrain")) + "/model.safetensors";
  continued.flags_record = "--steps=2\n";
  continued.vocab_file = path("vocab.txt");
  ASSERT_TRUE(write_file_atomic(continued.vocab_file, "[PAD]\n").ok());
  ASSERT_TRUE(train_bert(continued).ok());
  EXPECT_NEAR(losses("continued").at(1), pretrained_loss, 0.3) << "a random model starts at " << random_loss;
  EXPECT_EQ(*read_file(path("continued/flags")), "--steps=2\n");
  EXPECT_EQ(*read_file(path("continued/vocab.txt")), "[PAD]\n");

  // Weights of another shape are refused, with the config field behind it first.
  TrainerConfig wrong = continued;
  wrong.run_dir = path("wrong");
  wrong.model.intermediate_size = 32;
  absl::Status status = train_bert(wrong);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("does not fit the model: intermediate_size 32 in the config, 64 in the checkpoint"),
            absl::string_view::npos)
      << status.message();
}

// Loss scaling by powers of two is exact in FP32: static and dynamic scaling (which grows every 5 steps here, from
// 2^16 to 2^20) log the unscaled run's losses bit for bit, and a dynamic run killed and resumed continues with its
// scale.
TEST_F(Trainer, LossScalingChangesNothingInFp32) {
  TrainerConfig plain = config("plain");
  plain.steps = 24;
  ASSERT_TRUE(train_bert(plain).ok());
  TrainerConfig fixed = plain;
  fixed.run_dir = path("static");
  fixed.loss_scale = *parse_loss_scale("1024");
  ASSERT_TRUE(train_bert(fixed).ok());
  TrainerConfig dynamic = plain;
  dynamic.run_dir = path("dynamic");
  dynamic.loss_scale.mode = LossScaleConfig::Mode::kDynamic;
  dynamic.loss_scale.growth_interval = 5;
  dynamic.checkpoint_interval = 10;
  dynamic.stop_after = 13;
  ASSERT_TRUE(train_bert(dynamic).ok());
  dynamic.stop_after = 0;
  ASSERT_TRUE(train_bert(dynamic).ok());  // resumes from step 10

  const std::map<int64_t, double> want = losses("plain");
  ASSERT_EQ(want.size(), 24u);
  for (const char* run : {"static", "dynamic"}) {
    const std::map<int64_t, double> got = losses(run);
    ASSERT_EQ(got.size(), 24u) << run;
    for (const auto& [step, loss] : want) EXPECT_EQ(got.at(step), loss) << run << " step " << step;
  }
  // The scale each step used: 2^16 for steps 1-5, 2^17 for 6-10, ... across the resume at step 10.
  for (absl::string_view line : absl::StrSplit(*read_file(path("dynamic/metrics.jsonl")), '\n', absl::SkipEmpty())) {
    const Json record = *Json::parse(line);
    if (record.get("loss_scale") == nullptr) continue;
    const int64_t step = record.get("step")->as_int64();
    EXPECT_EQ(record.get("loss_scale")->as_number(), 65536.0 * (1 << ((step - 1) / 5))) << "step " << step;
    EXPECT_EQ(record.get("skipped"), nullptr) << "step " << step;
  }
}

// Mixed precision rounds every GEMM operand to 16 bits: the losses move off the FP32 run's (so the rounding is
// really on) but stay close to it, and the model learns as fast. FP16 runs with dynamic loss scaling.
TEST_F(Trainer, MixedPrecisionTracksFp32) {
  TrainerConfig plain = config("fp32");
  plain.steps = 300;
  ASSERT_TRUE(train_bert(plain).ok());
  const std::map<int64_t, double> want = losses("fp32");
  for (const DType dtype : {DType::kBF16, DType::kF16}) {
    TrainerConfig mixed = plain;
    mixed.run_dir = path(dtype_name(dtype));
    mixed.mixed_precision = dtype;
    mixed.loss_scale = *parse_loss_scale("auto", /*fp16_arithmetic=*/dtype == DType::kF16);
    ASSERT_TRUE(train_bert(mixed).ok()) << dtype_name(dtype);
    const std::map<int64_t, double> got = losses(dtype_name(dtype));
    ASSERT_EQ(got.size(), want.size()) << dtype_name(dtype);
    double differences = 0, last_got = 0, last_want = 0;
    for (const auto& [step, loss] : want) {
      differences += std::fabs(got.at(step) - loss);
      if (step > 290) last_got += got.at(step), last_want += loss;
    }
    EXPECT_NE(got.at(1), want.at(1)) << dtype_name(dtype) << ": the operands were not rounded";
    EXPECT_NEAR(got.at(1), want.at(1), 0.01) << dtype_name(dtype);
    EXPECT_LT(differences / want.size(), 0.05) << dtype_name(dtype);
    EXPECT_NEAR(last_got, last_want, 0.05 * last_want) << dtype_name(dtype);
    EXPECT_LT(last_got / 10, 0.75 * got.at(1)) << dtype_name(dtype) << ": learned";
    std::printf("%s: mean |loss - fp32 loss| %.4f, last 10 steps %.4f vs %.4f\n", dtype_name(dtype),
                differences / want.size(), last_got / 10, last_want / 10);
  }
}

// Clipped softmax with an alpha warm-up over 20 steps: each step record logs the alpha it trained with, alpha(s)
// at step s + 1 (train/clip_alpha_warmup.h); a run killed in the middle of the warm-up and continued logs exactly
// the uninterrupted run's losses; continuing it with another warm-up is refused. Without a warm-up every step
// logs the model's alpha.
TEST_F(Trainer, ClipAlphaWarmupResumesExactly) {
  TrainerConfig straight = config("straight");
  straight.model.attention = AttentionVariant::kClippedSoftmax;
  straight.model.clip_alpha = 4.0f;
  straight.steps = 24;
  straight.checkpoint_interval = 10;
  straight.clip_alpha_warmup_steps = 20;
  ASSERT_TRUE(train_bert(straight).ok());

  // Killed half-way through the warm-up.
  const TrainerConfig killed = expect_killed_run_continues_on_the_same_losses(straight);

  // The logged alphas: zeta T / (T - 1) = 32/31 at step 1, 4 from step 21 on.
  const ClipAlphaWarmup warmup{uniform_threshold_clip_alpha(1.0f, 32), 4.0f, 20};
  auto alphas = [&](const std::string& run) {
    std::map<int64_t, double> out;
    for (absl::string_view line : absl::StrSplit(*read_file(path(run + "/metrics.jsonl")), '\n', absl::SkipEmpty())) {
      const Json record = *Json::parse(line);
      if (record.get("loss") != nullptr) out[record.get("step")->as_int64()] = record.get("clip_alpha")->as_number();
    }
    return out;
  };
  for (const char* run : {"straight", "killed"}) {
    const std::map<int64_t, double> alpha = alphas(run);
    ASSERT_EQ(alpha.size(), 24u) << run;
    for (const auto& [step, value] : alpha) {
      EXPECT_EQ(value, static_cast<double>(warmup.alpha_at(step - 1))) << run << " step " << step;
    }
    EXPECT_FLOAT_EQ(alpha.at(1), 32.0f / 31.0f) << run;
    EXPECT_FLOAT_EQ(alpha.at(11), 32.0f / 31.0f + (4.0f - 32.0f / 31.0f) * 0.5f) << run;
    EXPECT_EQ(alpha.at(21), 4.0) << run;
    EXPECT_EQ(alpha.at(24), 4.0) << run;
  }

  // Another warm-up is another run.
  TrainerConfig other = killed;
  other.clip_alpha_warmup_steps = 10;
  absl::Status status = train_bert(other);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("clip_alpha_warmup.steps 20 -> 10"), absl::string_view::npos) << status.message();
  other = killed;
  other.clip_alpha_warmup_start = 2.0f;
  status = train_bert(other);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("clip_alpha_warmup.start"), absl::string_view::npos) << status.message();

  // No warm-up: the model's alpha throughout, so the first step's loss differs from the warm-up's.
  TrainerConfig fixed = straight;
  fixed.run_dir = path("fixed");
  fixed.steps = 2;
  fixed.warmup_steps = 2;
  fixed.clip_alpha_warmup_steps = 0;
  ASSERT_TRUE(train_bert(fixed).ok());
  for (const auto& [step, value] : alphas("fixed")) EXPECT_EQ(value, 4.0) << "step " << step;
  EXPECT_NE(losses("fixed").at(1), losses("straight").at(1));
}

TEST_F(Trainer, RejectsBadConfigurationAndData) {
  TrainerConfig c = config("bad");
  c.seq_len = 64;  // beyond max_position_embeddings = 32
  EXPECT_FALSE(train_bert(c).ok());
  c = config("bad");
  c.model.vocab_size = 100;
  EXPECT_FALSE(train_bert(c).ok());
  c = config("bad");
  c.mixed_precision = DType::kI8;
  EXPECT_FALSE(train_bert(c).ok());
  EXPECT_EQ(*parse_mixed_precision("none"), DType::kF32);
  EXPECT_EQ(*parse_mixed_precision("bf16"), DType::kBF16);
  EXPECT_EQ(*parse_mixed_precision("fp16"), DType::kF16);
  EXPECT_FALSE(parse_mixed_precision("f16").ok());
  // The alpha warm-up needs clipped softmax with an alpha, and a start needs a warm-up.
  c = config("bad");
  c.clip_alpha_warmup_steps = 5;
  absl::Status warmup = train_bert(c);
  EXPECT_NE(warmup.message().find("needs --attention clipped_softmax with --clip_alpha"), absl::string_view::npos)
      << warmup;
  c.model.attention = AttentionVariant::kClippedSoftmax;
  EXPECT_FALSE(train_bert(c).ok());  // gamma, no alpha
  c.model.clip_alpha = 3.0f;
  c.clip_alpha_warmup_start = -1.0f;
  EXPECT_NE(train_bert(c).message().find("--clip_alpha_warmup_start must be finite and >= 0"), absl::string_view::npos);
  c.clip_alpha_warmup_steps = 0;
  c.clip_alpha_warmup_start = 1.0f;
  EXPECT_NE(train_bert(c).message().find("--clip_alpha_warmup_start needs --clip_alpha_warmup_steps"),
            absl::string_view::npos);
  c = config("bad");
  c.train_data = path("missing.zst");
  absl::Status status = train_bert(c);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("missing.zst"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace bertforge
