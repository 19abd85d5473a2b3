// Evaluation of an MLM model on validation data: perplexity, the exponential of
// the mean cross-entropy over every masked token of the validation set, and the
// outlier metrics of train/outlier_metrics.h (docs/design.md).
//
// The validation loader should not shuffle; evaluation always starts from its
// first batch, so every evaluation of a run scores the same masked tokens.
//
// An encoder-only model (no MLM head, e.g. an imported Hugging Face BertModel,
// models/hf_checkpoint.h) has no perplexity: evaluate() then runs encode() on
// the same batches, so the outlier metrics come from the same probes.
//
// compare_hidden_states measures how far a model's final hidden state (the
// encoder output) is from a reference model's on the same text, e.g. a
// quantized model against its FP original: SQNR and cosine similarity over the
// real tokens of the validation batches, with the MLM masking undone (the
// original tokens are put back where the loader masked them), so both models
// read the held-out text itself. This works for encoder-only models too.
//
// An activation hook set on the model (BertForMaskedLM::set_hook, e.g. quant/'s
// fake quantization) stays active during evaluation, so these functions then
// measure the hooked model; the outlier probes see the activations after the hook.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "models/bert.h"
#include "train/data_loader.h"
#include "train/outlier_metrics.h"

namespace bertforge {

struct PerplexityResult {
  double mean_loss = 0;        // mean cross-entropy (nats) over the scored tokens
  double perplexity = 0;       // exp(mean_loss)
  int64_t scored_tokens = 0;   // masked positions that were scored
  int64_t batches = 0;
};

// Runs the model in eval mode (no dropout, no graph) over up to `max_batches`
// batches of `loader` (all of one epoch when max_batches <= 0), then restores
// the model's training mode and rewinds the loader. The model needs its MLM head.
PerplexityResult evaluate_perplexity(BertForMaskedLM& model, DataLoader& loader, int64_t max_batches = 0);

struct EvalResult {
  // False for an encoder-only model: perplexity then holds only the batch count.
  bool has_perplexity = true;
  PerplexityResult perplexity;
  OutlierMetrics outliers;  // over every sample of the evaluated batches, padding excluded
};

// Perplexity and outlier metrics over the same batches as evaluate_perplexity
// (outlier metrics alone for an encoder-only model). The model's probe feeds the
// metrics during the pass, then is cleared. The attention-sink metrics take the
// [CLS] and [SEP] positions of each batch as the special tokens, by the ids of
// the loader's vocabulary.
EvalResult evaluate(BertForMaskedLM& model, DataLoader& loader, int64_t max_batches = 0);

// Agreement of a model's hidden states with a reference's, over real tokens (attention_mask 1).
struct HiddenStateAgreement {
  double sqnr_db = 0;      // 10 log10(sum ref^2 / sum (ref - x)^2); +inf when x == ref
  double mean_cosine = 0;  // mean over tokens of cos(ref_t, x_t) (1 when both are zero, 0 when one is)
  int64_t tokens = 0;
  int64_t batches = 0;
};

// Accumulates HiddenStateAgreement over batches.
class HiddenStateComparison {
 public:
  // reference, model: F32 (B,T,C) of one shape, on any device; attention_mask: F32 (B,T), positions with 0 are
  // skipped (undefined: every position counts).
  void add(const Tensor& reference, const Tensor& model, const Tensor& attention_mask);
  HiddenStateAgreement result() const;

 private:
  double signal_ = 0, noise_ = 0, cosine_sum_ = 0;
  int64_t tokens_ = 0, batches_ = 0;
};

// The batch's input_ids with the MLM masking undone: the label where one is set, the input elsewhere.
Tensor unmasked_input_ids(const MlmBatch& batch);

// encode() of both models (eval mode, no graph; training modes restored; each on its own device) on the
// unmasked text of up to `max_batches` batches of `loader` (all of one epoch when max_batches <= 0), from its
// first batch; the loader is rewound afterwards. The models need the same hidden size.
HiddenStateAgreement compare_hidden_states(BertForMaskedLM& reference, BertForMaskedLM& model, DataLoader& loader,
                                           int64_t max_batches = 0);

// Perplexity of the unigram model fitted on the scored tokens themselves: the
// baseline a model that ignores context cannot beat. Same batches as above.
double unigram_perplexity(DataLoader& loader, int64_t vocab_size, int64_t max_batches = 0);

}  // namespace bertforge
