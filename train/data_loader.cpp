// The MLM data loader: packing, per-epoch shuffling, rank slices, masking and
// resumption (the rules are in data_loader.h).
#include "train/data_loader.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/philox.h"
#include "train/token_shard.h"

namespace bertforge {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

absl::Status validate_options(const DataLoaderOptions& o) {
  if (o.max_seq_len < 3) {
    return absl::InvalidArgumentError(absl::StrCat("data loader: max_seq_len ", o.max_seq_len,
                                                   " leaves no room for a token between [CLS] and [SEP]"));
  }
  if (o.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("data loader: batch_size ", o.batch_size, " < 1"));
  }
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("data loader: rank ", o.rank, " is outside [0, world_size ", o.world_size, ")"));
  }
  return o.masking.validate();
}

// The member `key` of a position object as an int64 (seed and shuffle are read separately).
absl::StatusOr<int64_t> int_member(const Json& json, const char* key) {
  const Json* value = json.get(key);
  if (value == nullptr || !value->is_int64()) {
    return absl::InvalidArgumentError(absl::StrCat("loader position: \"", key, "\" is missing or not an integer"));
  }
  return value->as_int64();
}

}  // namespace

// ---- LoaderPosition ---------------------------------------------------------------------------

Json LoaderPosition::to_json() const {
  Json json = Json::object();
  json.set("epoch", epoch);
  json.set("batch", batch);
  json.set("sequence_count", sequence_count);
  json.set("max_seq_len", max_seq_len);
  json.set("batch_size", batch_size);
  json.set("world_size", world_size);
  json.set("seed", absl::StrCat(seed));  // a string: JSON numbers are doubles, exact only below 2^53
  json.set("shuffle", shuffle);
  return json;
}

absl::StatusOr<LoaderPosition> LoaderPosition::from_json(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("loader position: expected a JSON object");
  LoaderPosition p;
  BF_ASSIGN_OR_RETURN(p.epoch, int_member(json, "epoch"));
  BF_ASSIGN_OR_RETURN(p.batch, int_member(json, "batch"));
  BF_ASSIGN_OR_RETURN(p.sequence_count, int_member(json, "sequence_count"));
  BF_ASSIGN_OR_RETURN(p.max_seq_len, int_member(json, "max_seq_len"));
  BF_ASSIGN_OR_RETURN(p.batch_size, int_member(json, "batch_size"));
  BF_ASSIGN_OR_RETURN(p.world_size, int_member(json, "world_size"));
  const Json* seed = json.get("seed");
  if (seed == nullptr || !seed->is_string() || !absl::SimpleAtoi(seed->as_string(), &p.seed)) {
    return absl::InvalidArgumentError("loader position: \"seed\" is missing or not a decimal string");
  }
  const Json* shuffle = json.get("shuffle");
  if (shuffle == nullptr || !shuffle->is_bool()) {
    return absl::InvalidArgumentError("loader position: \"shuffle\" is missing or not a bool");
  }
  p.shuffle = shuffle->as_bool();
  return p;
}

// ---- Shard discovery --------------------------------------------------------------------------

absl::StatusOr<std::vector<std::string>> find_shards(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::is_regular_file(path, error)) return std::vector<std::string>{path};
  if (!fs::is_directory(path, error)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such shard file or directory"));
  }
  std::vector<std::string> shards;
  for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
    std::error_code entry_error;
    if (entry.is_regular_file(entry_error) && entry.path().extension() == ".zst") {
      shards.push_back(entry.path().string());
    }
  }
  if (error) return absl::InternalError(absl::StrCat(path, ": cannot list directory: ", error.message()));
  if (shards.empty()) return absl::NotFoundError(absl::StrCat(path, ": directory holds no *.zst token shards"));
  std::sort(shards.begin(), shards.end());
  return shards;
}

// ---- DataLoader -------------------------------------------------------------------------------

absl::StatusOr<DataLoader> DataLoader::open(const std::vector<std::string>& shard_paths, const MlmVocab& vocab,
                                            const DataLoaderOptions& options) {
  BF_RETURN_IF_ERROR(vocab.validate());
  BF_RETURN_IF_ERROR(validate_options(options));
  if (vocab.size > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("data loader: vocabulary size ", vocab.size, " exceeds u32"));
  }
  if (shard_paths.empty()) return absl::InvalidArgumentError("data loader: no token shards given");

  DataLoader loader;
  loader.vocab_ = vocab;
  loader.options_ = options;
  for (const std::string& path : shard_paths) {
    BF_ASSIGN_OR_RETURN(TokenShard shard, read_shard(path, static_cast<uint32_t>(vocab.size)));
    for (uint64_t d = 0; d < shard.document_count(); ++d) {
      const uint64_t begin = shard.document_offsets[d], end = shard.document_offsets[d + 1];
      if (begin == end) continue;
      if (!loader.stream_.empty()) loader.stream_.push_back(static_cast<uint32_t>(vocab.sep_id));
      loader.stream_.insert(loader.stream_.end(), shard.tokens.begin() + begin, shard.tokens.begin() + end);
    }
  }
  if (loader.stream_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("data loader: the ", shard_paths.size(), " token shard(s) starting with ", shard_paths[0],
                     " hold no tokens"));
  }
  const int64_t chunk = options.max_seq_len - 2;
  loader.sequence_count_ = ceil_div(static_cast<int64_t>(loader.stream_.size()), chunk);
  loader.batches_per_epoch_ = ceil_div(loader.sequence_count_, options.world_size * options.batch_size);
  return loader;
}

void DataLoader::compute_order() {
  const int64_t n = sequence_count_;
  order_.resize(n);
  for (int64_t k = 0; k < n; ++k) order_[k] = k;
  if (options_.shuffle) {
    // Fisher-Yates: for i = n-1 .. 1 swap i with j uniform in [0, i], j from the 64-bit
    // draw u = (elements 2i, 2i+1) as j = floor(u * (i + 1) / 2^64).
    const uint64_t offset = philox_stream_offset(kShuffleStreamTag, static_cast<uint64_t>(epoch_), 0, 0);
    for (int64_t i = n - 1; i > 0; --i) {
      const uint64_t u = static_cast<uint64_t>(philox_uint32(options_.seed, offset, 2 * i)) |
                         static_cast<uint64_t>(philox_uint32(options_.seed, offset, 2 * i + 1)) << 32;
      const auto j = static_cast<int64_t>((static_cast<unsigned __int128>(u) * static_cast<uint64_t>(i + 1)) >> 64);
      std::swap(order_[i], order_[j]);
    }
  }
  order_epoch_ = epoch_;
}

void DataLoader::fill_row(int64_t row, int64_t k, MlmBatch& batch) const {
  const int64_t length = options_.max_seq_len;
  int64_t* ids = batch.input_ids.data<int64_t>() + row * length;
  float* attention = batch.attention_mask.data<float>() + row * length;
  std::fill(ids, ids + length, vocab_.pad_id);
  std::fill(attention, attention + length, 0.0f);
  batch.sequence_indices[row] = k;
  if (k < 0) return;

  const int64_t chunk = length - 2;
  const int64_t begin = k * chunk;
  const int64_t end = std::min<int64_t>(begin + chunk, static_cast<int64_t>(stream_.size()));
  ids[0] = vocab_.cls_id;
  std::copy(stream_.begin() + begin, stream_.begin() + end, ids + 1);
  ids[end - begin + 1] = vocab_.sep_id;
  std::fill(attention, attention + (end - begin + 2), 1.0f);
}

MlmBatch DataLoader::next() {
  if (order_epoch_ != epoch_) compute_order();
  const int64_t rows = options_.batch_size, length = options_.max_seq_len;
  MlmBatch batch;
  batch.input_ids = Tensor::empty({rows, length}, DType::kI64);
  batch.token_type_ids = Tensor::zeros({rows, length}, DType::kI64);
  batch.attention_mask = Tensor::empty({rows, length}, DType::kF32);
  batch.sequence_indices.resize(rows);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t p = (batch_ * rows + i) * options_.world_size + options_.rank;  // permuted position
    fill_row(i, p < sequence_count_ ? order_[p] : -1, batch);
  }
  batch.labels = mask_batch(batch.input_ids, vocab_, options_.masking, options_.seed, static_cast<uint64_t>(epoch_),
                            batch.sequence_indices);
  if (++batch_ == batches_per_epoch_) {
    ++epoch_;
    batch_ = 0;
  }
  return batch;
}

LoaderPosition DataLoader::position() const {
  LoaderPosition p;
  p.epoch = epoch_;
  p.batch = batch_;
  p.sequence_count = sequence_count_;
  p.max_seq_len = options_.max_seq_len;
  p.batch_size = options_.batch_size;
  p.world_size = options_.world_size;
  p.seed = options_.seed;
  p.shuffle = options_.shuffle;
  return p;
}

absl::Status DataLoader::restore(const LoaderPosition& position) {
  const LoaderPosition here = this->position();
  auto mismatch = [](const char* what, auto saved, auto mine) {
    return absl::InvalidArgumentError(absl::StrCat("loader position was saved with ", what, " ", saved,
                                                   " but this loader has ", mine));
  };
  if (position.sequence_count != here.sequence_count) {
    return mismatch("sequence_count", position.sequence_count, here.sequence_count);
  }
  if (position.max_seq_len != here.max_seq_len) return mismatch("max_seq_len", position.max_seq_len, here.max_seq_len);
  if (position.batch_size != here.batch_size) return mismatch("batch_size", position.batch_size, here.batch_size);
  if (position.world_size != here.world_size) return mismatch("world_size", position.world_size, here.world_size);
  if (position.seed != here.seed) return mismatch("seed", position.seed, here.seed);
  if (position.shuffle != here.shuffle) {
    return mismatch("shuffle", position.shuffle ? "on" : "off", here.shuffle ? "on" : "off");
  }
  if (position.epoch < 0 || position.batch < 0 || position.batch >= batches_per_epoch_) {
    return absl::InvalidArgumentError(absl::StrCat("loader position epoch ", position.epoch, " batch ",
                                                   position.batch, " is outside the ", batches_per_epoch_,
                                                   " batches of an epoch"));
  }
  epoch_ = position.epoch;
  batch_ = position.batch;
  return absl::OkStatus();
}

}  // namespace bertforge
