// Fill-mask: what a BERT's MLM head predicts at each [MASK] of a text, as transformers' fill-mask pipeline
// computes it.
//
//   ids    = [CLS] wordpiece(text) [SEP], every literal "[MASK]" in the text becoming the [MASK] id (the rest is
//            tokenized as any sentence: train/tokenizer.h, BERT uncased); never truncated, since that could cut a
//            mask away: a text longer than max_seq_len ids is an error
//   logits = model.forward(ids) (1,T,V), in eval mode (dropout off), no graph recorded
//   p      = softmax(logits[t]) over the whole vocabulary, for each position t holding [MASK]
//   top_k  the k ids of highest p, highest first (equal p: the lower id first)
//
// Each [MASK] is predicted independently from the same forward pass (as transformers does): with two masks the
// pair of top-1 tokens is not a joint prediction. Only "[MASK]" (upper case, as HF's tokenizer matches it) is
// special; "[CLS]", "[SEP]" and the like in the text are ordinary text, as everywhere in train/tokenizer.h.
// tests/e2e/bert_fill_mask.sh compares tokens and probabilities with transformers' BertForMaskedLM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "models/bert.h"
#include "train/tokenizer.h"

namespace bertforge {

inline constexpr const char* kMaskToken = "[MASK]";
// transformers' fill-mask pipeline's default top_k.
inline constexpr int64_t kDefaultFillMaskTopK = 5;

// One candidate for a [MASK].
struct MaskCandidate {
  int32_t id = 0;
  std::string token;       // the vocabulary's spelling, "##" prefix included
  double probability = 0;  // softmax over the whole vocabulary
};

// The predictions at one [MASK].
struct FilledMask {
  int64_t position = 0;              // index in the ids ([CLS] is 0)
  std::vector<MaskCandidate> top;    // top_k candidates, highest probability first
};

// The ids the model reads for `text` (UTF-8): [CLS] pieces [SEP] with each "[MASK]" as the mask id.
// InvalidArgument when the text holds no "[MASK]", or when the ids are more than max_seq_len (>= 2).
absl::StatusOr<std::vector<int32_t>> fill_mask_token_ids(const WordPieceTokenizer& tokenizer, absl::string_view text,
                                                         int64_t max_seq_len);

// OK when `model` can fill masks with `tokenizer`: it has an MLM head (an encoder-only BertModel such as
// all-MiniLM-L6-v2 has none: FailedPrecondition saying so), and the vocabulary is the model's (same size, else
// InvalidArgument).
absl::Status check_fill_mask_model(const BertForMaskedLM& model, const WordPieceTokenizer& tokenizer);

// The `top_k` candidates at every [MASK] of `ids` (fill_mask_token_ids' output), in order of position. The model
// runs in eval mode (its previous mode comes back afterwards), without recording a graph, with any hook it has (a
// quantized model's fake quantization), on the device of its parameters. Fails as check_fill_mask_model does, and
// with InvalidArgument for top_k outside [1, vocab_size], ids longer than max_position_embeddings or outside the
// vocabulary, or ids without a mask.
absl::StatusOr<std::vector<FilledMask>> fill_mask(BertForMaskedLM& model, const WordPieceTokenizer& tokenizer,
                                                  const std::vector<int32_t>& ids, int64_t top_k);

}  // namespace bertforge
