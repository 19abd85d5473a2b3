// quant/group_statistics.h — one floating-point pass of a BERT over calibration batches that records, per encoder
// layer, the input of each group of Linears that share it (quant/channel_fold.h's FoldGroup): per-channel mean and
// max |x| and a reservoir sample of real-token rows (quant/awq_statistics.h). AWQ and migration search their
// per-channel scales on these.
//
// The group inputs are read at these tap points (models/forward_context.h):
//   qkv          embeddings.layer_norm (layer 0), else layer.<l-1>.layer_output
//   context      layer.<l>.context
//   ffn_input    layer.<l>.attention_layer_norm
//   gelu_output  layer.<l>.gelu
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "models/bert.h"
#include "quant/awq_statistics.h"
#include "quant/channel_fold.h"
#include "train/data_loader.h"

namespace bertforge::quant {

// Fills *batch with the next calibration batch (input_ids, token_type_ids and attention_mask are used); false when
// there is none left.
using CalibrationBatchSource = std::function<bool(MlmBatch* batch)>;

// The next `batches` batches of `loader` (which advances as they are taken).
CalibrationBatchSource loader_batches(DataLoader& loader, int64_t batches);
// The batches of `batches` in order (the vector must outlive the source).
CalibrationBatchSource vector_batches(const std::vector<MlmBatch>& batches);

// The tap site whose activation is the input of `group` in encoder layer `layer` (file comment).
TapSite group_input_site(int64_t layer, FoldGroup group);

struct GroupInputStatistics {
  // [layer][group] in kFoldGroups order.
  std::vector<std::array<std::unique_ptr<AwqInputStatistics>, 4>> layers;
  int64_t tokens = 0;  // real tokens seen (per group input)

  AwqInputStatistics& at(int64_t layer, FoldGroup group) {
    return *layers[static_cast<size_t>(layer)][static_cast<size_t>(group)];
  }
  // Frees one group's sample once it is no longer needed (the gelu samples are the largest).
  void release(int64_t layer, FoldGroup group) {
    layers[static_cast<size_t>(layer)][static_cast<size_t>(group)].reset();
  }
};

// Runs `model` (eval mode, no grad; its hook and mode are restored) on every batch of `next_batch`, keeping at most
// `max_samples` rows per group input, reservoir seeds derived from `seed`. FailedPrecondition when no real token
// was seen.
absl::StatusOr<GroupInputStatistics> collect_group_input_statistics(BertForMaskedLM& model,
                                                                    const CalibrationBatchSource& next_batch,
                                                                    int64_t max_samples, uint64_t seed);

}  // namespace bertforge::quant
