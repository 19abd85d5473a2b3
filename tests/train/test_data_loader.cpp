// The MLM data loader: sequence layout and padding, every token exactly once
// per epoch across ranks, per-epoch shuffling, masking keys, and an exact
// resume from a saved position.
#include "train/data_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "tests/support/test_support.h"
#include "train/token_shard.h"

namespace bertforge {
namespace {

using test_support::TempDirTest;

MlmVocab small_vocab() {
  MlmVocab v;
  v.size = 5000;
  v.pad_id = 0;
  v.unk_id = 1;
  v.cls_id = 2;
  v.sep_id = 3;
  v.mask_id = 4;
  return v;
}

std::vector<int64_t> as_vector(const Tensor& t) {
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

// Row `row` of a batch before masking: the label where a position was masked, else the input id.
std::vector<int64_t> unmasked_row(const MlmBatch& batch, int64_t row) {
  const int64_t length = batch.input_ids.size(1);
  std::vector<int64_t> out(length);
  for (int64_t t = 0; t < length; ++t) {
    const int64_t label = batch.labels.data<int64_t>()[row * length + t];
    out[t] = label != kMlmIgnoreLabel ? label : batch.input_ids.data<int64_t>()[row * length + t];
  }
  return out;
}

void expect_same_batch(const MlmBatch& a, const MlmBatch& b, const std::string& what) {
  EXPECT_EQ(as_vector(a.input_ids), as_vector(b.input_ids)) << what;
  EXPECT_EQ(as_vector(a.labels), as_vector(b.labels)) << what;
  EXPECT_EQ(as_vector(a.token_type_ids), as_vector(b.token_type_ids)) << what;
  EXPECT_EQ(a.attention_mask.to_float_vector(), b.attention_mask.to_float_vector()) << what;
  EXPECT_EQ(a.sequence_indices, b.sequence_indices) << what;
}

class DataLoaderTest : public TempDirTest {
 protected:
  DataLoaderTest() : TempDirTest("data_loader") {}

  // Writes `documents` documents of 0 to 49 regular tokens over two shards, "b.zst" holding the
  // first half and "a.zst" the second (so sorting by name reorders them), and returns the stream
  // the loader should build: the documents of a.zst then b.zst, non-empty ones joined by [SEP].
  std::vector<int64_t> write_corpus(int documents) {
    std::vector<std::vector<uint32_t>> docs(documents);
    uint32_t counter = 0;
    for (int d = 0; d < documents; ++d) {
      for (int i = 0; i < (d * 37) % 50; ++i) docs[d].push_back(5 + counter++ % 4995);
    }
    const int half = documents / 2;
    auto write = [&](const std::string& name, int begin, int end) {
      ShardWriter writer;
      ASSERT_TRUE(writer.open(path(name), 5000).ok());
      for (int d = begin; d < end; ++d) ASSERT_TRUE(writer.add_document(docs[d]).ok());
      ASSERT_TRUE(writer.close().ok());
    };
    write("b.zst", 0, half);
    write("a.zst", half, documents);

    std::vector<int64_t> stream;
    for (int k = 0; k < documents; ++k) {
      const std::vector<uint32_t>& doc = docs[(k + half) % documents];
      if (doc.empty()) continue;
      if (!stream.empty()) stream.push_back(small_vocab().sep_id);
      stream.insert(stream.end(), doc.begin(), doc.end());
    }
    return stream;
  }

  DataLoader open_loader(const DataLoaderOptions& options) {
    const absl::StatusOr<std::vector<std::string>> shards = find_shards(dir_);
    EXPECT_TRUE(shards.ok()) << shards.status();
    absl::StatusOr<DataLoader> loader = DataLoader::open(*shards, small_vocab(), options);
    EXPECT_TRUE(loader.ok()) << loader.status();
    return std::move(*loader);
  }
};

TEST_F(DataLoaderTest, FindsShardsSortedByName) {
  write_corpus(4);
  ASSERT_TRUE(write_file_atomic(path("notes.txt"), "not a shard").ok());
  const absl::StatusOr<std::vector<std::string>> shards = find_shards(dir_);
  ASSERT_TRUE(shards.ok()) << shards.status();
  EXPECT_EQ(*shards, (std::vector<std::string>{path("a.zst"), path("b.zst")}));
  EXPECT_EQ(*find_shards(path("b.zst")), std::vector<std::string>{path("b.zst")});
  EXPECT_EQ(find_shards(path("nowhere")).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::create_directories(path("empty"));
  EXPECT_EQ(find_shards(path("empty")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DataLoaderTest, SequenceLayoutPaddingAndMasking) {
  const std::vector<int64_t> stream = write_corpus(40);
  DataLoaderOptions options;
  options.max_seq_len = 16;  // 14 stream tokens per sequence
  options.batch_size = 4;
  options.shuffle = false;
  options.seed = 11;
  DataLoader loader = open_loader(options);
  const int64_t chunk = 14;
  const int64_t n = (static_cast<int64_t>(stream.size()) + chunk - 1) / chunk;
  ASSERT_EQ(loader.token_count(), static_cast<int64_t>(stream.size()));
  ASSERT_EQ(loader.sequence_count(), n);
  ASSERT_EQ(loader.batches_per_epoch(), (n + 3) / 4);
  const MlmVocab vocab = small_vocab();

  for (int64_t j = 0; j < loader.batches_per_epoch(); ++j) {
    const MlmBatch batch = loader.next();
    ASSERT_EQ(batch.input_ids.shape(), (Shape{4, 16}));
    EXPECT_EQ(batch.attention_mask.dtype(), DType::kF32);
    EXPECT_EQ(as_vector(batch.token_type_ids), std::vector<int64_t>(64, 0));
    const std::vector<float> attention = batch.attention_mask.to_float_vector();
    for (int64_t i = 0; i < 4; ++i) {
      const int64_t k = j * 4 + i;  // unshuffled: sequences in stream order
      const std::vector<int64_t> row = unmasked_row(batch, i);
      std::vector<int64_t> want(16, vocab.pad_id);
      int64_t used = 0;  // [CLS] + tokens + [SEP]
      if (k < n) {
        EXPECT_EQ(batch.sequence_indices[i], k);
        const int64_t begin = k * chunk, end = std::min<int64_t>(begin + chunk, stream.size());
        want[0] = vocab.cls_id;
        std::copy(stream.begin() + begin, stream.begin() + end, want.begin() + 1);
        want[end - begin + 1] = vocab.sep_id;
        used = end - begin + 2;
      } else {
        EXPECT_EQ(batch.sequence_indices[i], -1);  // a padding row after the last sequence
      }
      EXPECT_EQ(row, want) << "batch " << j << " row " << i;
      for (int64_t t = 0; t < 16; ++t) EXPECT_EQ(attention[i * 16 + t], t < used ? 1.0f : 0.0f);
    }
    // The masks are those of mask_batch for the epoch (0) and the rows' sequences.
    std::vector<int64_t> unmasked;
    for (int64_t i = 0; i < 4; ++i) {
      const std::vector<int64_t> row = unmasked_row(batch, i);
      unmasked.insert(unmasked.end(), row.begin(), row.end());
    }
    Tensor ids = Tensor::from_vector(unmasked, {4, 16});
    const Tensor labels = mask_batch(ids, vocab, options.masking, options.seed, 0, batch.sequence_indices);
    EXPECT_EQ(as_vector(labels), as_vector(batch.labels)) << "batch " << j;
    EXPECT_EQ(as_vector(ids), as_vector(batch.input_ids)) << "batch " << j;
  }
  EXPECT_EQ(loader.position().epoch, 1);
  EXPECT_EQ(loader.position().batch, 0);
}

// Every sequence (hence every stream token) is seen exactly once per epoch across W ranks.
void expect_epoch_covers_stream(const std::vector<int64_t>& stream,
                                const std::vector<DataLoader*>& ranks, int64_t batch_size) {
  const int64_t world = static_cast<int64_t>(ranks.size());
  const int64_t n = ranks[0]->sequence_count();
  std::map<int64_t, std::vector<int64_t>> content;  // sequence index -> its stream tokens
  int64_t padding_rows = 0;
  for (DataLoader* loader : ranks) {
    ASSERT_EQ(loader->batches_per_epoch(), (n + world * batch_size - 1) / (world * batch_size));
    for (int64_t j = 0; j < loader->batches_per_epoch(); ++j) {
      const MlmBatch batch = loader->next();
      for (int64_t i = 0; i < batch_size; ++i) {
        const int64_t k = batch.sequence_indices[i];
        if (k < 0) {
          ++padding_rows;
          continue;
        }
        // The row is [CLS] chunk [SEP] [PAD]...; the chunk may hold document separators itself,
        // so its end is found from the attention mask.
        const std::vector<int64_t> row = unmasked_row(batch, i);
        const std::vector<float> attention = batch.attention_mask.to_float_vector();
        const int64_t length = static_cast<int64_t>(row.size());
        int64_t used = 0;
        while (used < length && attention[i * length + used] == 1.0f) ++used;
        ASSERT_GE(used, 3);
        ASSERT_EQ(row[0], small_vocab().cls_id);
        ASSERT_EQ(row[used - 1], small_vocab().sep_id);
        ASSERT_TRUE(content.emplace(k, std::vector<int64_t>(row.begin() + 1, row.begin() + used - 1)).second)
            << "sequence " << k << " seen twice";
      }
    }
  }
  EXPECT_EQ(static_cast<int64_t>(content.size()), n);
  EXPECT_EQ(padding_rows, ranks[0]->batches_per_epoch() * world * batch_size - n);
  std::vector<int64_t> joined;
  for (const auto& [k, tokens] : content) joined.insert(joined.end(), tokens.begin(), tokens.end());
  EXPECT_EQ(joined, stream);
}

TEST_F(DataLoaderTest, EveryTokenOncePerEpochOnOneAndTwoRanks) {
  const std::vector<int64_t> stream = write_corpus(60);
  DataLoaderOptions options;
  options.max_seq_len = 16;
  options.batch_size = 3;
  options.seed = 5;
  DataLoader single = open_loader(options);
  expect_epoch_covers_stream(stream, {&single}, 3);

  options.world_size = 2;
  DataLoader rank0 = open_loader(options);
  options.rank = 1;
  DataLoader rank1 = open_loader(options);
  expect_epoch_covers_stream(stream, {&rank0, &rank1}, 3);
  expect_epoch_covers_stream(stream, {&rank0, &rank1}, 3);  // and again in epoch 1
}

TEST_F(DataLoaderTest, ShufflesDifferentlyEachEpoch) {
  write_corpus(60);
  DataLoaderOptions options;
  options.max_seq_len = 16;
  options.batch_size = 5;
  options.seed = 3;
  DataLoader loader = open_loader(options);
  auto epoch_order = [&](DataLoader& l) {
    std::vector<int64_t> order;
    for (int64_t j = 0; j < l.batches_per_epoch(); ++j) {
      const MlmBatch batch = l.next();
      for (int64_t k : batch.sequence_indices) {
        if (k >= 0) order.push_back(k);
      }
    }
    return order;
  };
  const std::vector<int64_t> epoch0 = epoch_order(loader), epoch1 = epoch_order(loader);
  std::vector<int64_t> identity(loader.sequence_count());
  for (size_t k = 0; k < identity.size(); ++k) identity[k] = static_cast<int64_t>(k);
  EXPECT_NE(epoch0, epoch1);
  EXPECT_NE(epoch0, identity);
  std::vector<int64_t> sorted0 = epoch0, sorted1 = epoch1;
  std::sort(sorted0.begin(), sorted0.end());
  std::sort(sorted1.begin(), sorted1.end());
  EXPECT_EQ(sorted0, identity);
  EXPECT_EQ(sorted1, identity);

  // The order depends on (seed, epoch) only: a second loader repeats it.
  DataLoader again = open_loader(options);
  EXPECT_EQ(epoch_order(again), epoch0);
  options.seed = 4;
  DataLoader other_seed = open_loader(options);
  EXPECT_NE(epoch_order(other_seed), epoch0);
}

TEST_F(DataLoaderTest, ResumesExactlyFromASavedPosition) {
  write_corpus(14);  // a few dozen sequences: 10 batches cross epoch boundaries
  DataLoaderOptions options;
  options.max_seq_len = 16;
  options.batch_size = 4;
  options.seed = 77;
  options.world_size = 2;
  options.rank = 1;
  DataLoader uninterrupted = open_loader(options);
  ASSERT_LT(uninterrupted.batches_per_epoch(), 8);
  std::vector<MlmBatch> expected;
  for (int j = 0; j < 10; ++j) expected.push_back(uninterrupted.next());

  DataLoader first = open_loader(options);
  for (int j = 0; j < 7; ++j) first.next();
  const std::string saved = first.position().to_json().dump();

  DataLoader resumed = open_loader(options);
  const absl::StatusOr<Json> json = Json::parse(saved);
  ASSERT_TRUE(json.ok()) << json.status();
  const absl::StatusOr<LoaderPosition> position = LoaderPosition::from_json(*json);
  ASSERT_TRUE(position.ok()) << position.status();
  ASSERT_TRUE(resumed.restore(*position).ok());
  for (int j = 7; j < 10; ++j) expect_same_batch(resumed.next(), expected[j], "batch " + std::to_string(j + 1));
}

TEST_F(DataLoaderTest, RejectsMismatchedPositions) {
  write_corpus(14);
  DataLoaderOptions options;
  options.max_seq_len = 16;
  options.batch_size = 4;
  DataLoader loader = open_loader(options);
  LoaderPosition position = loader.position();
  EXPECT_TRUE(loader.restore(position).ok());

  LoaderPosition other_batch_size = position;
  other_batch_size.batch_size = 8;
  const absl::Status status = loader.restore(other_batch_size);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("batch_size 8"), absl::string_view::npos) << status;
  LoaderPosition past_the_end = position;
  past_the_end.batch = loader.batches_per_epoch();
  EXPECT_FALSE(loader.restore(past_the_end).ok());

  EXPECT_FALSE(LoaderPosition::from_json(Json(3)).ok());
  Json no_seed = position.to_json();
  no_seed.set("seed", 5);  // a number, not the decimal string
  EXPECT_FALSE(LoaderPosition::from_json(no_seed).ok());
  const absl::StatusOr<LoaderPosition> round_trip = LoaderPosition::from_json(position.to_json());
  ASSERT_TRUE(round_trip.ok()) << round_trip.status();
  EXPECT_EQ(round_trip->to_json(), position.to_json());
}

TEST_F(DataLoaderTest, RejectsBadShardsAndOptions) {
  write_corpus(6);
  ShardWriter writer;
  ASSERT_TRUE(writer.open(path("other_vocab.zst"), 300).ok());
  ASSERT_TRUE(writer.add_document(std::vector<uint32_t>{7, 8}).ok());
  ASSERT_TRUE(writer.close().ok());
  const absl::StatusOr<DataLoader> wrong_vocab =
      DataLoader::open({path("a.zst"), path("other_vocab.zst")}, small_vocab(), DataLoaderOptions{});
  ASSERT_FALSE(wrong_vocab.ok());
  EXPECT_NE(wrong_vocab.status().message().find(path("other_vocab.zst")), absl::string_view::npos)
      << wrong_vocab.status();

  EXPECT_FALSE(DataLoader::open({}, small_vocab(), DataLoaderOptions{}).ok());
  DataLoaderOptions bad;
  bad.max_seq_len = 2;
  EXPECT_FALSE(DataLoader::open({path("a.zst")}, small_vocab(), bad).ok());
  bad = DataLoaderOptions{};
  bad.rank = 2;
  bad.world_size = 2;
  EXPECT_FALSE(DataLoader::open({path("a.zst")}, small_vocab(), bad).ok());

  ShardWriter empty;
  ASSERT_TRUE(empty.open(path("empty.zst"), 5000).ok());
  ASSERT_TRUE(empty.add_document(std::vector<uint32_t>{}).ok());
  ASSERT_TRUE(empty.close().ok());
  EXPECT_FALSE(DataLoader::open({path("empty.zst")}, small_vocab(), DataLoaderOptions{}).ok());
}

}  // namespace
}  // namespace bertforge
