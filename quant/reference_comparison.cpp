// A model against a reference on the same batches: hidden-state agreement and timed encode() throughput
// (reference_comparison.h).
#include "quant/reference_comparison.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/check.h"

namespace bertforge::quant {
namespace {

using Clock = std::chrono::steady_clock;

// encode() of `m` on the unmasked batch, moved to m's device, with the hidden state brought back to the CPU;
// adds the wall time of the call and the copy to *seconds when it is not null.
Tensor encode_on_cpu(BertForMaskedLM& m, const Tensor& ids, const MlmBatch& batch, double* seconds) {
  const Device device = m.named_parameters().front().second.device();
  const Tensor d_ids = ids.to(device), types = batch.token_type_ids.to(device);
  const Tensor mask = batch.attention_mask.to(device);
  const Clock::time_point start = Clock::now();
  Tensor hidden = m.encode(d_ids, types, mask).to(Device::cpu());
  if (seconds != nullptr) *seconds += std::chrono::duration<double>(Clock::now() - start).count();
  return hidden;
}

}  // namespace

ReferenceComparison compare_with_reference(BertForMaskedLM& reference, BertForMaskedLM& model, DataLoader& loader,
                                           int64_t max_batches) {
  BF_CHECK(reference.config().hidden_size == model.config().hidden_size,
           "reference comparison: the two models have different hidden sizes");
  autograd::NoGradGuard no_grad;
  const ScopedEvalMode reference_eval(reference), model_eval(model);
  const LoaderPosition start = loader.position();
  const int64_t batches = max_batches > 0 ? std::min(max_batches, loader.batches_per_epoch())
                                          : loader.batches_per_epoch();
  HiddenStateComparison comparison;
  ReferenceComparison result;
  for (int64_t b = 0; b < batches; ++b) {
    const MlmBatch batch = loader.next();
    const Tensor ids = unmasked_input_ids(batch);
    if (b == 0) {  // warm-up, untimed
      encode_on_cpu(reference, ids, batch, nullptr);
      encode_on_cpu(model, ids, batch, nullptr);
    }
    Tensor ref_hidden, hidden;
    if (b % 2 == 0) {
      ref_hidden = encode_on_cpu(reference, ids, batch, &result.reference_seconds);
      hidden = encode_on_cpu(model, ids, batch, &result.model_seconds);
    } else {
      hidden = encode_on_cpu(model, ids, batch, &result.model_seconds);
      ref_hidden = encode_on_cpu(reference, ids, batch, &result.reference_seconds);
    }
    comparison.add(ref_hidden, hidden, batch.attention_mask);
  }
  BF_CHECK(loader.restore(start).ok(), "reference comparison: cannot restore the loader");
  result.hidden = comparison.result();
  return result;
}

}  // namespace bertforge::quant
