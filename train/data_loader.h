// The MLM data loader: packs the documents of token shards into fixed-length
// BERT sequences, shuffles them per epoch, splits them across data-parallel
// ranks, masks them, and can resume at an exact batch.
//
// Packing (RoBERTa's FULL-SENTENCES). The documents of all shards, in shard
// order (paths as given; a directory gives its *.zst files sorted by name)
// and document order, form one stream, with a [SEP] between consecutive
// documents (empty documents are skipped). The stream is cut into chunks of
// C = max_seq_len - 2 tokens, and chunk k becomes sequence k:
//
//   [CLS] stream[k*C .. (k+1)*C) [SEP] [PAD] ...
//
// so a sequence may span several documents, separated by [SEP]. Every chunk
// is full except the last, which is padded. A document that ends exactly at a
// chunk's end is followed by that sequence's closing [SEP], and the next
// sequence starts [CLS] [SEP] (the separator). bert_prep --sentences stores
// each sentence as a document of its own (train/corpus_prep.h), so then every
// sentence is followed by a [SEP]. token_type_ids are all 0 (no
// next-sentence prediction). The stream is held in memory, 4 bytes per token
// (100M tokens take 400 MB); shards are decoded piece by piece while loading.
//
// Order. Each epoch visits the N sequences in a permutation of [0, N) drawn
// from Philox stream (seed, philox_stream_offset(kShuffleStreamTag, epoch, 0, 0))
// by Fisher-Yates (identity when shuffle is off), so the order depends only on
// (seed, epoch) and is recomputed exactly on resume.
//
// Ranks. Rank r of W takes the permuted positions r, r + W, r + 2W, ...;
// its batch j holds its positions j*B .. j*B + B - 1, i.e. permuted positions
// (j*B + i)*W + r for row i. The W batches with index j together cover permuted
// positions [j*W*B, (j+1)*W*B). An epoch has ceil(N / (W*B)) batches on every
// rank; rows past the end of the epoch are padding rows (all [PAD],
// attention_mask 0, labels -100, sequence index -1), so every rank runs the
// same number of steps with the same shapes.
//
// Masking. Sequence k seen in epoch e is masked from the stream of (seed, e, k)
// (train/mlm_masking.h), whatever its batch, row or rank: W ranks with batch B
// together mask and see exactly what one process with batch W*B sees.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/json.h"
#include "core/tensor.h"
#include "train/mlm_masking.h"

namespace bertforge {

inline constexpr uint64_t kShuffleStreamTag = 0x53485546464C4500ull;  // "SHUFFLE\0"

struct DataLoaderOptions {
  int64_t max_seq_len = 128;  // T, counting [CLS] and [SEP]; at least 3
  int64_t batch_size = 32;    // B, sequences per rank per batch
  uint64_t seed = 0;          // keys both the shuffle and the masking
  bool shuffle = true;        // false: sequences in stream order (validation)
  int64_t rank = 0;
  int64_t world_size = 1;
  MlmMaskingOptions masking;
};

// One batch; T = max_seq_len.
struct MlmBatch {
  Tensor input_ids;       // int64 (B, T): the masked sequences
  Tensor token_type_ids;  // int64 (B, T): all 0
  Tensor attention_mask;  // f32 (B, T): 1 at [CLS], tokens and [SEP]; 0 at [PAD]
  Tensor labels;          // int64 (B, T): original id at masked positions, -100 elsewhere
  std::vector<int64_t> sequence_indices;  // (B): the sequence k in each row, -1 for a padding row
};

// Where the loader is: the next batch it yields is batch `batch` of epoch
// `epoch`. The trainer saves it with its checkpoint (to_json) and hands it
// back to restore(); it is the same on every rank. It also records the layout
// it was taken under, because the same (epoch, batch) names other sequences
// when any of these change, and restore() refuses a mismatch.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
  int64_t sequence_count = 0;
  int64_t max_seq_len = 0;
  int64_t batch_size = 0;
  int64_t world_size = 0;
  uint64_t seed = 0;
  bool shuffle = true;

  Json to_json() const;
  static absl::StatusOr<LoaderPosition> from_json(const Json& json);
};

// The *.zst files of a directory sorted by name, or the path itself if it is a file.
absl::StatusOr<std::vector<std::string>> find_shards(const std::string& path);

class DataLoader {
 public:
  // Reads every shard (their vocab_size must equal vocab.size) and packs the stream.
  static absl::StatusOr<DataLoader> open(const std::vector<std::string>& shard_paths, const MlmVocab& vocab,
                                         const DataLoaderOptions& options);

  // The next batch of this rank; after the last batch of an epoch comes batch 0 of the next.
  MlmBatch next();

  LoaderPosition position() const;
  // Continues from `position` (taken from a loader with the same data and options).
  absl::Status restore(const LoaderPosition& position);

  const MlmVocab& vocab() const { return vocab_; }
  int64_t sequence_count() const { return sequence_count_; }  // N
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t token_count() const { return static_cast<int64_t>(stream_.size()); }  // stream length, separators included

 private:
  DataLoader() = default;
  // Fills row `row` of the batch tensors with sequence k (or padding when k < 0).
  void fill_row(int64_t row, int64_t k, MlmBatch& batch) const;
  // Makes order_ the permutation of epoch_.
  void compute_order();

  MlmVocab vocab_;
  DataLoaderOptions options_;
  std::vector<uint32_t> stream_;  // documents joined with [SEP]
  int64_t sequence_count_ = 0;
  int64_t batches_per_epoch_ = 0;
  int64_t epoch_ = 0;
  int64_t batch_ = 0;              // the next batch within epoch_
  int64_t order_epoch_ = -1;       // the epoch order_ belongs to
  std::vector<int64_t> order_;     // permuted position -> sequence index
};

}  // namespace bertforge
