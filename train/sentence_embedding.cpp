// Sentence embeddings: tokenize, batch by length, encode, mean-pool, normalise (see sentence_embedding.h).
#include "train/sentence_embedding.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "core/check.h"

namespace bertforge {

std::vector<int32_t> sentence_token_ids(const WordPieceTokenizer& tokenizer, absl::string_view sentence,
                                        int64_t max_seq_len) {
  BF_CHECK(max_seq_len >= 2, "sentence_token_ids: max_seq_len ", max_seq_len, " leaves no room for [CLS] [SEP]");
  std::vector<int32_t> pieces = tokenizer.encode(sentence);
  if (static_cast<int64_t>(pieces.size()) > max_seq_len - 2) pieces.resize(static_cast<size_t>(max_seq_len - 2));
  std::vector<int32_t> ids;
  ids.reserve(pieces.size() + 2);
  ids.push_back(tokenizer.cls_id());
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  ids.push_back(tokenizer.sep_id());
  return ids;
}

Tensor mean_pool_and_normalize(const Tensor& hidden, const Tensor& attention_mask) {
  BF_CHECK(hidden.dim() == 3 && attention_mask.dim() == 2 && hidden.size(0) == attention_mask.size(0) &&
               hidden.size(1) == attention_mask.size(1),
           "mean_pool_and_normalize: hidden ", hidden.shape_str(), " must be (B,T,C) and attention_mask ",
           attention_mask.shape_str(), " (B,T)");
  const int64_t B = hidden.size(0), T = hidden.size(1), C = hidden.size(2);
  const std::vector<float> h = hidden.to(Device::cpu()).to_float_vector();
  const std::vector<float> mask = attention_mask.to(Device::cpu()).to_float_vector();
  Tensor out = Tensor::empty({B, C});
  float* o = out.data<float>();
  std::vector<double> sum(static_cast<size_t>(C));
  for (int64_t b = 0; b < B; ++b) {
    std::fill(sum.begin(), sum.end(), 0.0);
    double tokens = 0;
    for (int64_t t = 0; t < T; ++t) {
      const float m = mask[b * T + t];
      BF_CHECK(m == 0.0f || m == 1.0f, "mean_pool_and_normalize: attention_mask holds ", m, " (0 or 1 expected)");
      if (m == 0.0f) continue;
      tokens += 1;
      const float* row = &h[(b * T + t) * C];
      for (int64_t c = 0; c < C; ++c) sum[c] += row[c];
    }
    double norm = 0;
    for (int64_t c = 0; c < C; ++c) {
      sum[c] /= std::max(tokens, 1e-9);
      norm += sum[c] * sum[c];
    }
    norm = std::max(std::sqrt(norm), 1e-12);
    for (int64_t c = 0; c < C; ++c) o[b * C + c] = static_cast<float>(sum[c] / norm);
  }
  return out;
}

namespace {

// One padded encoder input: ids [PAD]-filled and the mask, int64 (B,T) with T the longest sentence's length.
struct PaddedBatch {
  Tensor input_ids, attention_mask;
};

PaddedBatch pad_batch(const std::vector<const std::vector<int32_t>*>& sentence_ids, int32_t pad_id) {
  size_t T = 0;
  for (const std::vector<int32_t>* ids : sentence_ids) T = std::max(T, ids->size());
  const int64_t B = static_cast<int64_t>(sentence_ids.size());
  PaddedBatch batch{Tensor::empty({B, static_cast<int64_t>(T)}, DType::kI64),
                    Tensor::zeros({B, static_cast<int64_t>(T)}, DType::kI64)};
  int64_t* ids = batch.input_ids.data<int64_t>();
  int64_t* mask = batch.attention_mask.data<int64_t>();
  std::fill(ids, ids + B * static_cast<int64_t>(T), pad_id);
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int32_t>& sentence = *sentence_ids[b];
    for (size_t t = 0; t < sentence.size(); ++t) {
      ids[b * T + t] = sentence[t];
      mask[b * T + t] = 1;
    }
  }
  return batch;
}

}  // namespace

absl::StatusOr<Tensor> embed_sentences(BertForMaskedLM& model, const WordPieceTokenizer& tokenizer,
                                       const std::vector<std::string>& sentences,
                                       const SentenceEmbeddingOptions& options) {
  const BertConfig& config = model.config();
  if (options.max_seq_len < 2 || options.max_seq_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("max_seq_len must be in [2, ", config.max_position_embeddings,
                                                   "] (the model's max_position_embeddings), got ",
                                                   options.max_seq_len));
  }
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size must be at least 1, got ", options.batch_size));
  }
  if (tokenizer.vocab_size() > config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("the vocabulary has ", tokenizer.vocab_size(),
                                                   " tokens but the model's vocab_size is ", config.vocab_size,
                                                   ": not this model's vocab.txt"));
  }

  const int64_t N = static_cast<int64_t>(sentences.size()), C = config.hidden_size;
  std::vector<std::vector<int32_t>> ids(sentences.size());
  for (size_t i = 0; i < sentences.size(); ++i) {
    ids[i] = sentence_token_ids(tokenizer, sentences[i], options.max_seq_len);
  }
  // Longest first (ties in input order), so each batch pads little and the largest batch comes first.
  std::vector<int64_t> order(static_cast<size_t>(N));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });

  Tensor embeddings = Tensor::empty({N, C});
  float* out = embeddings.data<float>();
  ScopedEvalMode eval_mode(model);
  autograd::NoGradGuard no_grad;
  const Device device = model.named_parameters().front().second.device();
  for (int64_t start = 0; start < N; start += options.batch_size) {
    const int64_t end = std::min(N, start + options.batch_size);
    std::vector<const std::vector<int32_t>*> batch_ids;
    for (int64_t i = start; i < end; ++i) batch_ids.push_back(&ids[order[i]]);
    const PaddedBatch batch = pad_batch(batch_ids, tokenizer.pad_id());
    const Tensor mask = batch.attention_mask.to(device);
    const Tensor hidden = model.encode(batch.input_ids.to(device), Tensor(), mask);
    const Tensor pooled = mean_pool_and_normalize(hidden, mask);
    const float* rows = pooled.data<float>();
    for (int64_t i = start; i < end; ++i) std::copy_n(rows + (i - start) * C, C, out + order[i] * C);
    if (options.progress) options.progress(end);
  }
  return embeddings;
}

}  // namespace bertforge
