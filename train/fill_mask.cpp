// Fill-mask: tokenizing around [MASK], one MLM forward pass, softmax and top-k at the masks (see fill_mask.h).
#include "train/fill_mask.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "autograd/grad_mode.h"

namespace bertforge {

absl::StatusOr<std::vector<int32_t>> fill_mask_token_ids(const WordPieceTokenizer& tokenizer, absl::string_view text,
                                                         int64_t max_seq_len) {
  if (max_seq_len < 2) {
    return absl::InvalidArgumentError(absl::StrCat("max_seq_len ", max_seq_len, " leaves no room for [CLS] [SEP]"));
  }
  // The tokenizer reads "[MASK]" as ordinary text ("[", "mask", "]"), so the text is cut at each one and the
  // pieces between are tokenized on their own, as Hugging Face's tokenizer does around special tokens.
  const std::vector<absl::string_view> pieces = absl::StrSplit(text, kMaskToken);
  if (pieces.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("no ", kMaskToken, " in \"", text, "\" (write ", kMaskToken,
                                                   " where a token is to be predicted, in upper case)"));
  }
  std::vector<int32_t> ids{tokenizer.cls_id()};
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (i > 0) ids.push_back(tokenizer.mask_id());
    const std::vector<int32_t> piece = tokenizer.encode(pieces[i]);
    ids.insert(ids.end(), piece.begin(), piece.end());
  }
  ids.push_back(tokenizer.sep_id());
  if (static_cast<int64_t>(ids.size()) > max_seq_len) {
    return absl::InvalidArgumentError(absl::StrCat("the text is ", ids.size(), " tokens with [CLS] and [SEP], over ",
                                                   "the limit of ", max_seq_len, " (it is not cut, which could drop ",
                                                   "a mask)"));
  }
  return ids;
}

absl::Status check_fill_mask_model(const BertForMaskedLM& model, const WordPieceTokenizer& tokenizer) {
  if (!model.has_mlm_head()) {
    return absl::FailedPreconditionError(
        "the checkpoint has no MLM head (no cls.predictions.* tensors): it is an encoder-only model, such as a "
        "BertModel like sentence-transformers' all-MiniLM-L6-v2, which cannot predict masked tokens; fill-mask "
        "needs a BertForMaskedLM checkpoint");
  }
  if (tokenizer.vocab_size() != model.config().vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("the vocabulary has ", tokenizer.vocab_size(),
                                                   " tokens but the model's vocab_size is ", model.config().vocab_size,
                                                   ": not this model's vocab.txt"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<FilledMask>> fill_mask(BertForMaskedLM& model, const WordPieceTokenizer& tokenizer,
                                                  const std::vector<int32_t>& ids, int64_t top_k) {
  BF_RETURN_IF_ERROR(check_fill_mask_model(model, tokenizer));
  const int64_t V = model.config().vocab_size, T = static_cast<int64_t>(ids.size());
  if (top_k < 1 || top_k > V) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be in [1, ", V, "] (the vocabulary), got ", top_k));
  }
  if (T > model.config().max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(T, " tokens are more than the model's max_position_embeddings ",
                                                   model.config().max_position_embeddings));
  }
  std::vector<int64_t> positions;
  for (int64_t t = 0; t < T; ++t) {
    if (ids[t] < 0 || ids[t] >= V) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[t], " at position ", t,
                                                     " is outside the vocabulary [0, ", V, ")"));
    }
    if (ids[t] == tokenizer.mask_id()) positions.push_back(t);
  }
  if (positions.empty()) return absl::InvalidArgumentError("the ids hold no [MASK]");

  Tensor input = Tensor::empty({1, T}, DType::kI64);
  std::copy(ids.begin(), ids.end(), input.data<int64_t>());
  std::vector<float> logits;
  {
    ScopedEvalMode eval_mode(model);
    autograd::NoGradGuard no_grad;
    const Device device = model.named_parameters().front().second.device();
    logits = model.forward(input.to(device)).logits.to(Device::cpu()).to_float_vector();  // (1,T,V)
  }

  std::vector<FilledMask> out;
  std::vector<int32_t> order(static_cast<size_t>(V));
  for (const int64_t t : positions) {
    const float* row = logits.data() + t * V;
    // softmax in double: p_v = exp(l_v - max) / sum_u exp(l_u - max)
    const float max_logit = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - max_logit);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    FilledMask filled;
    filled.position = t;
    for (int64_t i = 0; i < top_k; ++i) {
      const int32_t id = order[i];
      filled.top.push_back({id, tokenizer.token(id), std::exp(static_cast<double>(row[id]) - max_logit) / sum});
    }
    out.push_back(std::move(filled));
  }
  return out;
}

}  // namespace bertforge
