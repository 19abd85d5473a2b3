// Dynamic MLM masking from a Philox stream (the layout is in mlm_masking.h).
#include "train/mlm_masking.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/philox.h"

namespace bertforge {
namespace {

std::array<int64_t, 5> special_ids(const MlmVocab& vocab) {
  return {vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id};
}

bool is_probability(float p) { return p >= 0.0f && p <= 1.0f; }

}  // namespace

// ---- MlmVocab ---------------------------------------------------------------------------------

absl::Status MlmVocab::validate() const {
  static const char* const kNames[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  const std::array<int64_t, 5> ids = special_ids(*this);
  for (int k = 0; k < 5; ++k) {
    if (ids[k] < 0 || ids[k] >= size) {
      return absl::InvalidArgumentError(
          absl::StrCat("MLM vocabulary: ", kNames[k], " id ", ids[k], " is outside [0, ", size, ")"));
    }
    for (int j = 0; j < k; ++j) {
      if (ids[j] == ids[k]) {
        return absl::InvalidArgumentError(
            absl::StrCat("MLM vocabulary: ", kNames[j], " and ", kNames[k], " share id ", ids[k]));
      }
    }
  }
  if (regular_count() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("MLM vocabulary of size ", size, " has no token besides the five special ones"));
  }
  return absl::OkStatus();
}

bool MlmVocab::is_special(int64_t id) const {
  const std::array<int64_t, 5> ids = special_ids(*this);
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

int64_t MlmVocab::regular_token(int64_t k) const {
  // Walking the special ids upwards, each one at or below the candidate pushes it up by one.
  std::array<int64_t, 5> ids = special_ids(*this);
  std::sort(ids.begin(), ids.end());
  int64_t id = k;
  for (int64_t special : ids) {
    if (special <= id) ++id;
  }
  return id;
}

absl::Status MlmMaskingOptions::validate() const {
  if (!is_probability(mask_prob) || !is_probability(mask_token_prob) || !is_probability(random_token_prob) ||
      mask_token_prob + random_token_prob > 1.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MLM masking probabilities must lie in [0, 1] with mask_token_prob + random_token_prob <= 1; got mask_prob ",
        mask_prob, ", mask_token_prob ", mask_token_prob, ", random_token_prob ", random_token_prob));
  }
  return absl::OkStatus();
}

// ---- Masking ----------------------------------------------------------------------------------

uint64_t mlm_stream_offset(uint64_t epoch, uint64_t sequence) {
  return philox_stream_offset(kMlmStreamTag, epoch, sequence, 0);
}

void mask_sequence(int64_t* ids, int64_t* labels, int64_t length, const MlmVocab& vocab,
                   const MlmMaskingOptions& options, uint64_t seed, uint64_t offset) {
  const uint64_t regular = static_cast<uint64_t>(vocab.regular_count());
  // Replaces position t according to words 1 and 2 of its block and records its label.
  auto mask_position = [&](int64_t t, const Uint32x4& block) {
    labels[t] = ids[t];
    const float u_action = philox_word_to_uniform(block.x[1]);
    if (u_action < options.mask_token_prob) {
      ids[t] = vocab.mask_id;
    } else if (u_action < options.mask_token_prob + options.random_token_prob) {
      ids[t] = vocab.regular_token(static_cast<int64_t>((static_cast<uint64_t>(block.x[2]) * regular) >> 32));
    }
  };

  int64_t chosen = 0;
  int64_t fallback = -1;  // the non-special position with the smallest u_select
  float fallback_u = 2.0f;
  for (int64_t t = 0; t < length; ++t) {
    labels[t] = kMlmIgnoreLabel;
    if (vocab.is_special(ids[t])) continue;
    const Uint32x4 block = philox_block(seed, offset, static_cast<uint64_t>(t));
    const float u_select = philox_word_to_uniform(block.x[0]);
    if (u_select < options.mask_prob) {
      mask_position(t, block);
      ++chosen;
    } else if (u_select < fallback_u) {
      fallback = t;
      fallback_u = u_select;
    }
  }
  if (chosen == 0 && fallback >= 0) {
    mask_position(fallback, philox_block(seed, offset, static_cast<uint64_t>(fallback)));
  }
}

Tensor mask_batch(Tensor& ids, const MlmVocab& vocab, const MlmMaskingOptions& options, uint64_t seed,
                  uint64_t epoch, const std::vector<int64_t>& sequence_indices) {
  BF_CHECK(ids.dtype() == DType::kI64 && ids.dim() == 2 && ids.device().is_cpu() && ids.is_contiguous(),
           "mask_batch: ids must be a contiguous int64 (B, T) CPU tensor, got ", ids.str());
  const absl::Status vocab_ok = vocab.validate(), options_ok = options.validate();
  BF_CHECK(vocab_ok.ok(), "mask_batch: ", vocab_ok.ToString());
  BF_CHECK(options_ok.ok(), "mask_batch: ", options_ok.ToString());
  const int64_t batch = ids.size(0), length = ids.size(1);
  BF_CHECK(static_cast<int64_t>(sequence_indices.size()) == batch, "mask_batch: ", sequence_indices.size(),
           " sequence indices for ", batch, " rows");
  Tensor labels = Tensor::full({batch, length}, static_cast<float>(kMlmIgnoreLabel), DType::kI64);
  for (int64_t b = 0; b < batch; ++b) {
    if (sequence_indices[b] < 0) continue;  // a padding row
    mask_sequence(ids.data<int64_t>() + b * length, labels.data<int64_t>() + b * length, length, vocab, options,
                  seed, mlm_stream_offset(epoch, static_cast<uint64_t>(sequence_indices[b])));
  }
  return labels;
}

}  // namespace bertforge
