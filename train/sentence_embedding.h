// Sentence embeddings as sentence-transformers computes them for all-MiniLM-L6-v2 (Transformer -> Pooling(mean)
// -> Normalize):
//
//   ids    = [CLS] wordpiece(sentence) [SEP], the pieces cut so that ids has at most max_seq_len tokens
//            (Hugging Face's tokenizer(truncation=True, max_length=max_seq_len): [SEP] is kept)
//   h      = encode(ids) (T,C), the last hidden state; in batches padded with [PAD] and an attention mask
//   pooled = sum_t mask_t h_t / max(sum_t mask_t, 1e-9)      mean over the real tokens
//   e      = pooled / max(||pooled||_2, 1e-12)               torch.nn.functional.normalize
//
// Sentences are batched in order of decreasing token count (as sentence-transformers does), so each batch pads
// to nearly its own length; the rows come back in the input order. Padded keys get attention probability exactly
// 0 (models/bert.h), so a sentence's embedding does not depend on its batch beyond float rounding order.
//
// The tokenizer is BERT-uncased (train/tokenizer.h): right for all-MiniLM-L6-v2 and uncased BERTs, not for a
// cased vocabulary. tests/train/test_sentence_embedding.cpp compares ids and embeddings with transformers'.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "models/bert.h"
#include "train/tokenizer.h"

namespace bertforge {

// sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (its sentence_bert_config.json).
inline constexpr int64_t kDefaultSentenceMaxSeqLen = 256;

struct SentenceEmbeddingOptions {
  int64_t max_seq_len = kDefaultSentenceMaxSeqLen;  // tokens per sentence, [CLS] and [SEP] included; >= 2
  int64_t batch_size = 32;                          // sentences per encoder pass
  // Called after each batch with the number of sentences embedded so far; may be empty.
  std::function<void(int64_t done)> progress;
};

// The ids the encoder reads for `sentence`: [CLS] pieces [SEP], at most max_seq_len (>= 2) of them.
std::vector<int32_t> sentence_token_ids(const WordPieceTokenizer& tokenizer, absl::string_view sentence,
                                        int64_t max_seq_len);

// Mean of `hidden` (B,T,C) F32 over the positions where `attention_mask` (B,T, 0 or 1, any dtype) is 1, each row
// then L2-normalised -> (B,C) F32 on the CPU. Inputs on any device.
Tensor mean_pool_and_normalize(const Tensor& hidden, const Tensor& attention_mask);

// The embeddings (N,C) F32 on the CPU of `sentences` (UTF-8), row i for sentence i. The model runs in eval mode
// without recording a graph (its previous mode comes back afterwards), with any hook it has (a quantized model's
// fake quantization), on the device of its parameters. InvalidArgument for options out of range, a max_seq_len
// above the model's max_position_embeddings, or a tokenizer whose ids do not fit the model's vocabulary.
absl::StatusOr<Tensor> embed_sentences(BertForMaskedLM& model, const WordPieceTokenizer& tokenizer,
                                       const std::vector<std::string>& sentences,
                                       const SentenceEmbeddingOptions& options = {});

}  // namespace bertforge
