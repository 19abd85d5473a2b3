// quant/group_statistics.cpp — the statistics pass over the fold groups' inputs (see group_statistics.h).
#include "quant/group_statistics.h"

#include <optional>
#include <utility>

#include "autograd/grad_mode.h"
#include "quant/calibration.h"

namespace bertforge::quant {

CalibrationBatchSource loader_batches(DataLoader& loader, int64_t batches) {
  auto taken = std::make_shared<int64_t>(0);
  return [&loader, batches, taken](MlmBatch* batch) {
    if (*taken >= batches) return false;
    ++*taken;
    *batch = loader.next();
    return true;
  };
}

CalibrationBatchSource vector_batches(const std::vector<MlmBatch>& batches) {
  auto next = std::make_shared<size_t>(0);
  return [&batches, next](MlmBatch* batch) {
    if (*next >= batches.size()) return false;
    *batch = batches[(*next)++];
    return true;
  };
}

TapSite group_input_site(int64_t layer, FoldGroup group) {
  return fold_group_linears(group).front().input_site(layer);  // the group's Linears share it
}

absl::StatusOr<GroupInputStatistics> collect_group_input_statistics(BertForMaskedLM& model,
                                                                    const CalibrationBatchSource& next_batch,
                                                                    int64_t max_samples, uint64_t seed) {
  const BertConfig& config = model.config();
  const int64_t L = config.num_hidden_layers;
  GroupInputStatistics stats;
  stats.layers.resize(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    for (FoldGroup group : kFoldGroups) {
      const int g = static_cast<int>(group);
      const int64_t width = group == FoldGroup::kGeluOutput ? config.intermediate_size : config.hidden_size;
      stats.layers[static_cast<size_t>(l)][static_cast<size_t>(g)] = std::make_unique<AwqInputStatistics>(
          width, max_samples, seed * 1000003ull + static_cast<uint64_t>(l * 4 + g));
    }
  }
  autograd::NoGradGuard no_grad;
  const ScopedEvalMode eval_mode(model);
  // For each tap site (by TapSite::index()), the (layer, group) whose input it is, if any.
  std::vector<std::optional<std::pair<int64_t, FoldGroup>>> fed_group(all_tap_sites(L).size());
  for (int64_t l = 0; l < L; ++l) {
    for (FoldGroup group : kFoldGroups) fed_group[static_cast<size_t>(group_input_site(l, group).index())] = {l, group};
  }
  Tensor mask;  // the current batch's attention mask (B,T)
  const ScopedActivationHook hook(model, [&](const TapSite& site, const Tensor& value) {
    const auto& fed = fed_group[static_cast<size_t>(site.index())];
    if (fed) stats.at(fed->first, fed->second).observe(value, mask);
    return value;
  });
  MlmBatch batch;
  while (next_batch(&batch)) {
    mask = batch.attention_mask;
    model.encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
  }
  stats.tokens = L == 0 ? 0 : stats.at(0, FoldGroup::kQkv).rows_seen();
  if (stats.tokens == 0) return absl::FailedPreconditionError("the calibration batches hold no real token");
  return stats;
}

}  // namespace bertforge::quant
