// Validation perplexity, outlier metrics, and the unigram baseline of perplexity.
#include "train/evaluation.h"

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"

namespace bertforge {
namespace {

// Calls fn(batch) for each evaluated batch of one pass from the loader's first batch.
template <typename Fn>
int64_t for_each_eval_batch(DataLoader& loader, int64_t max_batches, Fn&& fn) {
  const LoaderPosition saved = loader.position();
  LoaderPosition start = saved;
  start.epoch = 0;
  start.batch = 0;
  BF_CHECK(loader.restore(start).ok(), "evaluation: cannot rewind the validation loader");
  const int64_t batches = max_batches > 0 ? std::min(max_batches, loader.batches_per_epoch())
                                          : loader.batches_per_epoch();
  for (int64_t b = 0; b < batches; ++b) fn(loader.next());
  BF_CHECK(loader.restore(saved).ok(), "evaluation: cannot restore the validation loader");
  return batches;
}

int64_t count_scored(const Tensor& labels) {
  int64_t n = 0;
  const int64_t* l = labels.data<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i) n += l[i] != -100;
  return n;
}

// One evaluation pass; `outliers`, when not null, observes every batch (including
// those without masked tokens, whose activations are just as informative). An
// encoder-only model runs encode() alone, for the outliers; nothing is scored.
PerplexityResult evaluate_pass(BertForMaskedLM& model, DataLoader& loader, int64_t max_batches,
                               OutlierAccumulator* outliers) {
  BF_CHECK(model.has_mlm_head() || outliers != nullptr,
           "evaluation: perplexity needs an MLM head; this model is an encoder only");
  autograd::NoGradGuard no_grad;
  const ScopedEvalMode eval_mode(model);
  double loss_sum = 0;
  PerplexityResult result;
  result.batches = for_each_eval_batch(loader, max_batches, [&](const MlmBatch& batch) {
    const int64_t scored = count_scored(batch.labels);
    if (outliers != nullptr) {
      outliers->set_attention_mask(batch.attention_mask);
    } else if (scored == 0) {
      return;
    }
    if (!model.has_mlm_head() || scored == 0) {  // the outlier probes see the encoder alone
      model.encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
      return;
    }
    const Tensor loss = model.mlm_loss(batch.input_ids, batch.token_type_ids, batch.attention_mask, batch.labels);
    loss_sum += static_cast<double>(loss.item<float>()) * static_cast<double>(scored);
    result.scored_tokens += scored;
  });
  result.mean_loss = result.scored_tokens > 0 ? loss_sum / static_cast<double>(result.scored_tokens) : 0.0;
  result.perplexity = std::exp(result.mean_loss);
  return result;
}

}  // namespace

PerplexityResult evaluate_perplexity(BertForMaskedLM& model, DataLoader& loader, int64_t max_batches) {
  return evaluate_pass(model, loader, max_batches, /*outliers=*/nullptr);
}

EvalResult evaluate(BertForMaskedLM& model, DataLoader& loader, int64_t max_batches) {
  OutlierAccumulator outliers(model.config().num_hidden_layers);
  // Clears the probe on every way out, so the model never calls a destroyed accumulator.
  struct ProbeScope {
    BertForMaskedLM& model;
    ~ProbeScope() { model.set_probe({}); }
  } scope{model};
  model.set_probe(outliers.probe());
  EvalResult result;
  result.has_perplexity = model.has_mlm_head();
  result.perplexity = evaluate_pass(model, loader, max_batches, &outliers);
  result.outliers = outliers.result();
  return result;
}

double unigram_perplexity(DataLoader& loader, int64_t vocab_size, int64_t max_batches) {
  std::vector<int64_t> counts(vocab_size, 0);
  int64_t total = 0;
  for_each_eval_batch(loader, max_batches, [&](const MlmBatch& batch) {
    const int64_t* l = batch.labels.data<int64_t>();
    for (int64_t i = 0; i < batch.labels.numel(); ++i) {
      if (l[i] == -100) continue;
      ++counts[l[i]];
      ++total;
    }
  });
  if (total == 0) return 0.0;
  double entropy = 0;  // the cross-entropy of the empirical distribution with itself
  for (int64_t c : counts) {
    if (c > 0) entropy -= static_cast<double>(c) / total * std::log(static_cast<double>(c) / total);
  }
  return std::exp(entropy);
}

}  // namespace bertforge
