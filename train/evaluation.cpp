// Validation perplexity, outlier metrics, hidden-state agreement between two models, and the unigram baseline of
// perplexity.
#include "train/evaluation.h"

#include <cmath>
#include <limits>
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

// F32 (B,T): 1 where input_ids (int64 (B,T)) holds [CLS] or [SEP], the keys of the attention-sink metrics. The
// MLM masking never touches these positions, so the masked ids show them.
Tensor special_token_mask(const Tensor& input_ids, const MlmVocab& vocab) {
  const int64_t* ids = input_ids.data<int64_t>();
  std::vector<float> special(input_ids.numel());
  for (int64_t i = 0; i < input_ids.numel(); ++i) special[i] = ids[i] == vocab.cls_id || ids[i] == vocab.sep_id;
  return Tensor::from_vector(special, input_ids.shape());
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
  const Device device = model.named_parameters().front().second.device();  // batches go where the model is
  result.batches = for_each_eval_batch(loader, max_batches, [&](const MlmBatch& batch) {
    const int64_t scored = count_scored(batch.labels);
    if (outliers != nullptr) {
      outliers->set_attention_mask(batch.attention_mask);
      outliers->set_special_tokens(special_token_mask(batch.input_ids, loader.vocab()));
    } else if (scored == 0) {
      return;
    }
    const Tensor ids = batch.input_ids.to(device), types = batch.token_type_ids.to(device);
    const Tensor mask = batch.attention_mask.to(device);
    if (!model.has_mlm_head() || scored == 0) {  // the outlier probes see the encoder alone
      model.encode(ids, types, mask);
      return;
    }
    const Tensor loss = model.mlm_loss(ids, types, mask, batch.labels.to(device));
    loss_sum += static_cast<double>(loss.to(Device::cpu()).item<float>()) * static_cast<double>(scored);
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

void HiddenStateComparison::add(const Tensor& reference, const Tensor& model, const Tensor& attention_mask) {
  BF_CHECK(reference.shape() == model.shape() && reference.dim() == 3, "hidden states: want two (B,T,C) of one shape");
  const std::vector<float> ref = reference.to(Device::cpu()).to_float_vector();
  const std::vector<float> x = model.to(Device::cpu()).to_float_vector();
  const int64_t C = reference.size(2), positions = reference.size(0) * reference.size(1);
  std::vector<float> mask;
  if (attention_mask.defined()) {
    BF_CHECK(attention_mask.numel() == positions, "hidden states: the attention mask must be (B,T)");
    mask = attention_mask.to(Device::cpu()).to_float_vector();
  }
  for (int64_t p = 0; p < positions; ++p) {
    if (!mask.empty() && mask[p] == 0.0f) continue;
    double dot = 0, ref_sq = 0, x_sq = 0, diff_sq = 0;
    for (int64_t c = p * C; c < (p + 1) * C; ++c) {
      dot += double(ref[c]) * x[c];
      ref_sq += double(ref[c]) * ref[c];
      x_sq += double(x[c]) * x[c];
      diff_sq += (double(ref[c]) - x[c]) * (double(ref[c]) - x[c]);
    }
    signal_ += ref_sq;
    noise_ += diff_sq;
    if (ref_sq == 0 && x_sq == 0) {
      cosine_sum_ += 1.0;
    } else if (ref_sq > 0 && x_sq > 0) {
      cosine_sum_ += dot / std::sqrt(ref_sq * x_sq);
    }
    ++tokens_;
  }
  ++batches_;
}

HiddenStateAgreement HiddenStateComparison::result() const {
  HiddenStateAgreement r;
  r.tokens = tokens_;
  r.batches = batches_;
  r.mean_cosine = tokens_ > 0 ? cosine_sum_ / static_cast<double>(tokens_) : 0.0;
  r.sqnr_db = noise_ == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal_ / noise_);
  return r;
}

Tensor unmasked_input_ids(const MlmBatch& batch) {
  Tensor ids = batch.input_ids.clone();
  int64_t* out = ids.data<int64_t>();
  const int64_t* labels = batch.labels.data<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    if (labels[i] != kMlmIgnoreLabel) out[i] = labels[i];
  }
  return ids;
}

HiddenStateAgreement compare_hidden_states(BertForMaskedLM& reference, BertForMaskedLM& model, DataLoader& loader,
                                           int64_t max_batches) {
  BF_CHECK(reference.config().hidden_size == model.config().hidden_size,
           "hidden states: the two models have different hidden sizes");
  autograd::NoGradGuard no_grad;
  const ScopedEvalMode reference_eval(reference), model_eval(model);
  HiddenStateComparison comparison;
  // encode() of `m` on the batch moved to m's device.
  const auto encode = [](BertForMaskedLM& m, const Tensor& ids, const MlmBatch& batch) {
    const Device device = m.named_parameters().front().second.device();
    return m.encode(ids.to(device), batch.token_type_ids.to(device), batch.attention_mask.to(device));
  };
  for_each_eval_batch(loader, max_batches, [&](const MlmBatch& batch) {
    const Tensor ids = unmasked_input_ids(batch);
    comparison.add(encode(reference, ids, batch), encode(model, ids, batch), batch.attention_mask);
  });
  return comparison.result();
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
