// Makes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) with bertforge's own writers, so
// every seed is a file the tools really write, plus a few damaged copies of them (truncated, a header field
// changed) like the corrupt cases of the parsers' tests. Run from the repository root after building:
//   build/tests/fuzz/fuzz_make_seed_corpus tests/fuzz/corpus
// It replaces the seeds it writes and leaves other files there alone. Seeds are kept to a few KB each.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "core/zstd_io.h"
#include "models/bert_config.h"
#include "quant/calibration.h"
#include "quant/quantized_checkpoint.h"
#include "quant/quantized_model.h"
#include "quant/weight_quant.h"
#include "train/data_loader.h"
#include "train/loss_scaler.h"
#include "train/rendezvous.h"
#include "train/token_shard.h"

namespace bertforge {
namespace {

namespace fs = std::filesystem;

// Exits with a message on any failure: a generator that half-works would commit misleading seeds.
void check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "fuzz_make_seed_corpus: %s\n", std::string(status.message()).c_str());
    std::exit(1);
  }
}

class CorpusWriter {
 public:
  explicit CorpusWriter(fs::path root) : root_(std::move(root)) {}

  // <root>/<target>/<seed>, its directory made if needed.
  std::string path(const std::string& target, const std::string& seed) const {
    fs::create_directories(root_ / target);
    return (root_ / target / seed).string();
  }
  void write(const std::string& target, const std::string& seed, absl::string_view bytes) const {
    check(write_file_atomic(path(target, seed), bytes));
  }
  // A damaged copy of an existing seed: its first `keep` bytes, or the whole with bytes [at, at + with.size())
  // replaced.
  void truncated_copy(const std::string& target, const std::string& seed, size_t keep) const {
    const std::string bytes = read(target, seed);
    write(target, absl::StrCat("truncated-", seed), bytes.substr(0, std::min(keep, bytes.size())));
  }
  void patched_copy(const std::string& target, const std::string& seed, const std::string& name, size_t at,
                    absl::string_view with) const {
    std::string bytes = read(target, seed);
    bytes.replace(std::min(at, bytes.size()), with.size(), std::string(with));
    write(target, name, bytes);
  }
  std::string read(const std::string& target, const std::string& seed) const {
    absl::StatusOr<std::string> bytes = read_file(path(target, seed));
    check(bytes.status());
    return *bytes;
  }

 private:
  fs::path root_;
};

Tensor ramp(const Shape& shape, float scale) {
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = scale * (static_cast<float>(i % 7) - 3.0f);
  return Tensor::from_vector(values, shape);
}

void safetensors_seeds(const CorpusWriter& corpus) {
  const std::string target = "safetensors";
  check(write_safetensors(corpus.path(target, "fp32.safetensors"),
                          {{"bert.embeddings.word_embeddings.weight", ramp({4, 3}, 0.5f)},
                           {"bert.pooler.dense.bias", ramp({3}, 0.25f)}},
                          {{"format", "pt"}}));
  check(write_safetensors(corpus.path(target, "mixed_dtypes.safetensors"),
                          {{"a", ramp({2, 2}, 1.0f).to(DType::kF16)},
                           {"b", ramp({3}, 1.0f).to(DType::kBF16)},
                           {"c", Tensor::from_vector(std::vector<int8_t>{-128, 0, 127}, {3})},
                           {"d", Tensor::from_vector(std::vector<int64_t>{1, 2}, {2})},
                           {"scalar", Tensor::from_vector(std::vector<float>{1.0f}, {})},
                           {"empty", Tensor::empty({0, 5}, DType::kF32)}}));
  check(write_safetensors(corpus.path(target, "no_tensors.safetensors"), {}, {{"note", "only metadata"}}));
  corpus.truncated_copy(target, "fp32.safetensors", 40);
  corpus.patched_copy(target, "fp32.safetensors", "header_length_past_end.safetensors", 0,
                      std::string("\xff\xff\x00\x00\x00\x00\x00\x00", 8));
  std::string bytes = corpus.read(target, "fp32.safetensors");
  const size_t f32 = bytes.find("\"F32\"");
  if (f32 != std::string::npos) bytes.replace(f32, 5, "\"I64\"");
  corpus.write(target, "dtype_changed.safetensors", bytes);
}

void quantized_checkpoint_seeds(const CorpusWriter& corpus) {
  const std::string target = "quantized_checkpoint";
  using namespace quant;
  const auto save = [&](const std::string& seed, const QuantScheme& scheme, const Shape& shape) {
    QuantizedStateDict state;
    state.fp.emplace_back("encoder.dense.bias", ramp({shape[0]}, 0.1f));
    state.quantized.emplace_back("encoder.dense.weight", quantize_weight(ramp(shape, 0.05f), scheme));
    check(save_quantized_checkpoint(corpus.path(target, seed), state));
  };
  save("w8_per_channel.safetensors", int8_per_channel(), {4, 6});
  save("w4_per_group_asymmetric_odd_k.safetensors", int4_per_group(4, /*symmetric=*/false), {3, 7});
  save("w4_per_tensor_symmetric.safetensors", QuantScheme{4, true, Granularity::kPerTensor, 128}, {2, 4});
  save("w3_per_channel_asymmetric.safetensors", QuantScheme{3, false, Granularity::kPerChannel, 128}, {2, 5});
  check(write_safetensors(corpus.path(target, "fp_only.safetensors"), {{"x.weight", ramp({2, 2}, 1.0f)}}));
  corpus.truncated_copy(target, "w8_per_channel.safetensors", 100);
  std::string bytes = corpus.read(target, "w4_per_group_asymmetric_odd_k.safetensors");
  const size_t version = bytes.find("format_version\\\":1");
  if (version != std::string::npos) bytes.replace(version + 17, 1, "2");
  corpus.write(target, "format_version_2.safetensors", bytes);
}

Json trainer_state_json() {
  LoaderPosition position;
  position.epoch = 1;
  position.batch = 17;
  position.sequence_count = 1000;
  position.max_seq_len = 32;
  position.batch_size = 8;
  position.world_size = 2;
  position.seed = 12345678901234567ull;
  LossScaleConfig dynamic;
  dynamic.mode = LossScaleConfig::Mode::kDynamic;
  Json run = Json::object();
  run.set("model", BertConfig::tiny().to_json());
  run.set("seq_len", 32);
  run.set("batch_size", 8);
  run.set("grad_accumulation", 1);
  run.set("seed", "1");
  Json state = Json::object();
  state.set("step", 400);
  state.set("loader", position.to_json());
  state.set("loss_scale", LossScaler(dynamic).state());
  state.set("run", std::move(run));
  return state;
}

quant::ActivationQuantSpec activation_spec() {
  quant::ActivationQuantSpec spec;
  spec.bits = 8;
  spec.exclude = {"layer.1.attention.probs"};
  spec.calibration.observer = "minmax";
  spec.calibration.batches = 4;
  spec.calibration.ranges = {{"embeddings.sum", {-3.5f, 4.25f}}, {"layer.0.attention.probs", {0.0f, 1.0f}},
                             {"layer.0.output.sum", {-1e5f, 2.5e-3f}}};
  return spec;
}

void json_seeds(const CorpusWriter& corpus) {
  // The JSON documents bertforge writes, plus the corners of the grammar.
  corpus.write("json", "config.json", BertConfig::tiny().to_json().dump(2));
  corpus.write("json", "trainer_state.json", trainer_state_json().dump(2));
  corpus.write("json", "activations.json", activation_spec().to_json().dump());
  corpus.write("json", "scalars.json", R"([null, true, false, 0, -0.5, 1e300, 12345678901234567890, "", "\u00e9\ud83d\ude00\n\"\\"])");
  corpus.write("json", "nested.json", R"({"a": {"b": [[[{"c": []}]]], "d": {}}, "e": "x"})");
  corpus.write("json", "duplicate_key.json", R"({"a": 1, "a": 2})");
  corpus.write("json", "deep.json", std::string(300, '['));
}

void bert_config_seeds(const CorpusWriter& corpus) {
  const std::string target = "bert_config";
  for (const char* name : {"tiny", "mini", "base"}) {
    absl::StatusOr<BertConfig> config = BertConfig::preset(name);
    check(config.status());
    check(config->save(corpus.path(target, absl::StrCat(name, ".json"))));
  }
  BertConfig clipped = BertConfig::tiny();
  clipped.attention = AttentionVariant::kClippedSoftmax;
  clipped.clip_alpha = 3.2f;
  check(clipped.save(corpus.path(target, "clipped_softmax.json")));
  corpus.write(target, "hugging_face_bert.json",
               R"({"architectures": ["BertForMaskedLM"], "hidden_act": "gelu", "hidden_size": 384,
                   "intermediate_size": 1536, "num_attention_heads": 12, "num_hidden_layers": 6,
                   "max_position_embeddings": 512, "vocab_size": 30522, "type_vocab_size": 2,
                   "layer_norm_eps": 1e-12, "position_embedding_type": "absolute", "model_type": "bert"})");
  corpus.write(target, "bad_heads.json", R"({"hidden_size": 130, "num_attention_heads": 4})");
}

void vocab_seeds(const CorpusWriter& corpus) {
  const std::string specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  corpus.write("vocab", "small_vocab.txt", specials + "the\n##s\nhello\nworld\n!\n,\ncaf\xc3\xa9\n\xe4\xb8\xad\n##ing\n");
  corpus.write("vocab", "no_final_newline.txt", specials + "a\n##b");
  corpus.write("vocab", "duplicate.txt", specials + "a\na\n");
  corpus.write("vocab", "crlf.txt", "[PAD]\r\n[UNK]\r\n");
  corpus.write("vocab", "invalid_utf8.txt", specials + "\xc3\x28\n");
}

void tokenizer_seeds(const CorpusWriter& corpus) {
  corpus.write("tokenizer", "english.txt", "Hello, world! The unaffable man's caf\xc3\xa9 isn't open (yet).\n");
  corpus.write("tokenizer", "cjk_and_accents.txt", "\xe4\xb8\xad\xe6\x96\x87 na\xc3\xafve \xc3\x85ngstr\xc3\xb6m");
  corpus.write("tokenizer", "controls_and_invalid.txt", std::string("a\x00\x01\tb\r\n\xff\xfe\xc3 \xe2\x80\x8b", 15));
  corpus.write("tokenizer", "long_word.txt", std::string(150, 'x') + " end");
}

void token_shard_seeds(const CorpusWriter& corpus) {
  const std::string target = "token_shard";
  const auto write_shard = [&](const std::string& seed, uint32_t vocab_size,
                               const std::vector<std::vector<uint32_t>>& documents) {
    ShardWriter writer;
    check(writer.open(corpus.path(target, seed), vocab_size));
    for (const std::vector<uint32_t>& document : documents) check(writer.add_document(document));
    check(writer.close());
  };
  write_shard("small.zst", 100, {{1, 2, 3}, {}, {99, 0, 42, 7}});
  write_shard("wide_ids.zst", 70000, {{69999, 0}, {65536}});
  write_shard("empty.zst", 5, {});
  corpus.truncated_copy(target, "small.zst", 20);
  // The decompressed contents too: fuzz_token_shard also compresses each input before reading it.
  for (const char* seed : {"small.zst", "wide_ids.zst"}) {
    absl::StatusOr<std::string> content = zstd_decompress(corpus.read(target, seed));
    check(content.status());
    corpus.write(target, absl::StrCat(absl::string_view(seed).substr(0, std::strlen(seed) - 4), ".raw"), *content);
  }
}

void trainer_state_seeds(const CorpusWriter& corpus) {
  corpus.write("trainer_state", "trainer_state.json", trainer_state_json().dump(2) + "\n");
  Json no_scaler = trainer_state_json();
  no_scaler.set("loss_scale", Json());
  corpus.write("trainer_state", "null_loss_scale.json", no_scaler.dump(2) + "\n");
}

void activation_ranges_seeds(const CorpusWriter& corpus) {
  const std::string target = "activation_ranges";
  corpus.write(target, "w8a8.activations.json", activation_spec().to_json().dump(2) + "\n");
  corpus.write(target, "ranges_only.json", activation_spec().calibration.to_json().dump(2) + "\n");
  quant::ActivationQuantSpec fp;
  corpus.write(target, "fp.activations.json", fp.to_json().dump(2) + "\n");
  quant::ActivationQuantSpec per_token = activation_spec();
  per_token.exclude.clear();
  per_token.scope = quant::ActivationScope::kLinearInputs;
  per_token.granularity = quant::ActivationGranularity::kPerToken;
  corpus.write(target, "per_token.activations.json", per_token.to_json().dump(2) + "\n");
  corpus.write(target, "inverted_range.json", R"({"observer": "minmax", "batches": 1, "ranges": {"x": [2, 1]}})");
}

void rendezvous_seeds(const CorpusWriter& corpus) {
  corpus.write("rendezvous", "with_job.txt", format_rendezvous_file({"4242.0", 4, "nccl unique id \x01\x02"}));
  corpus.write("rendezvous", "no_job.txt", format_rendezvous_file({"", 2, ""}));
  corpus.write("rendezvous", "odd_hex.txt", "bertforge-rendezvous 1\njob -\nworld_size 2\npayload abc\n");
}

}  // namespace
}  // namespace bertforge

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const bertforge::CorpusWriter corpus(argv[1]);
  bertforge::safetensors_seeds(corpus);
  bertforge::quantized_checkpoint_seeds(corpus);
  bertforge::json_seeds(corpus);
  bertforge::bert_config_seeds(corpus);
  bertforge::vocab_seeds(corpus);
  bertforge::tokenizer_seeds(corpus);
  bertforge::token_shard_seeds(corpus);
  bertforge::trainer_state_seeds(corpus);
  bertforge::activation_ranges_seeds(corpus);
  bertforge::rendezvous_seeds(corpus);
  return 0;
}
