// quant/reference_comparison.h — a model (typically quantized) against a reference (its FP original) on the same
// batches: how close its final hidden state stays, and how fast each encodes, timed the same way.
//
// The hidden states are compared as train/evaluation.h compare_hidden_states does (HiddenStateComparison: SQNR
// and mean cosine over the real tokens, on the unmasked text); each encode() is also timed. So that neither model
// is favoured by the order or by warm caches: both first encode the first batch untimed (allocator, packed weights
// and page faults warmed), then the models take turns per batch (the reference first on even batches, the model
// first on odd ones), each timed from the call to its hidden state being on the CPU (so a GPU's queue is drained).
// Throughput is real (non-padding) tokens per second of that wall time. Used by bert_eval --compare_to.
#pragma once

#include <cstdint>

#include "models/bert.h"
#include "train/data_loader.h"
#include "train/evaluation.h"

namespace bertforge::quant {

struct ReferenceComparison {
  HiddenStateAgreement hidden;  // the model's final hidden state against the reference's
  double model_seconds = 0;     // encode() wall time over the timed batches
  double reference_seconds = 0;

  double model_tokens_per_s() const { return model_seconds > 0 ? hidden.tokens / model_seconds : 0.0; }
  double reference_tokens_per_s() const { return reference_seconds > 0 ? hidden.tokens / reference_seconds : 0.0; }
  // The model's throughput over the reference's (above 1: the model is faster).
  double speedup() const { return model_seconds > 0 ? reference_seconds / model_seconds : 0.0; }
};

// Both models (eval mode, no graph; training modes restored; each on its own device) on the unmasked text of up
// to `max_batches` batches of `loader` (all of one epoch when max_batches <= 0) from its current position, which
// is restored afterwards. The models need the same hidden size.
ReferenceComparison compare_with_reference(BertForMaskedLM& reference, BertForMaskedLM& model, DataLoader& loader,
                                           int64_t max_batches = 0);

}  // namespace bertforge::quant
