// Dynamic MLM masking (Devlin et al. 2019, as in RoBERTa: a new mask every
// time a sequence is seen): choose 15% of the non-special positions; of
// those, 80% become [MASK], 10% a random token, 10% stay; the labels hold
// the original id at chosen positions and -100 (ignored by the loss) elsewhere.
//
// Masking is a pure function of (seed, epoch, sequence, position), drawn
// from a counter-based Philox stream (core/philox.h), so a resumed run masks
// exactly like an uninterrupted one, and a sequence gets the same mask
// whatever batch, row or data-parallel rank it lands in: 2 ranks with batch B
// see exactly the masks of 1 process with batch 2B. The stream layout:
//
//   sequence k of the data, seen in `epoch`, uses stream (seed, offset) with
//     offset = philox_stream_offset(kMlmStreamTag, epoch, k, 0)
//   position t of the sample uses the Philox block t of that stream (elements 4t .. 4t+3):
//     word 0 -> u_select (uniform [0, 1)): the position is chosen iff u_select < mask_prob
//     word 1 -> u_action (uniform [0, 1)): < mask_token_prob: [MASK];
//               < mask_token_prob + random_token_prob: a random token; else keep
//     word 2 -> the random token: the k-th non-special id, k = (word * regular_count) >> 32
//               (multiply-shift; its bias, under regular_count / 2^32, is negligible)
//
// The tag in the first slot keeps these streams apart from dropout's, whose
// first slot is the step (ops/dropout.h).
//
// At least one position per sequence: a sequence with no chosen position
// would contribute nothing to the loss, which is likely for short sequences
// (0.85^4 = 52% for four tokens). So if none was chosen, the non-special
// position with the smallest u_select is chosen (the first on ties). For a
// 126-token sequence this fires with probability 0.85^126 ~ 1e-9, so the 15%
// rate is unchanged where it matters. A sequence without a non-special
// position (a padding row) gets no mask.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"
#include "ops/cross_entropy.h"

namespace bertforge {

inline constexpr uint64_t kMlmStreamTag = 0x4D4C4D4D41534B00ull;  // "MLMMASK\0"
inline constexpr int64_t kMlmIgnoreLabel = kIgnoreIndex;  // cross_entropy's default ignore_index

// What masking and sequence packing need to know about the vocabulary: its
// size and the ids of the five special tokens. Special tokens are never
// chosen for masking and never drawn as random replacements; every other id
// is a "regular" token.
struct MlmVocab {
  int64_t size = 0;
  int64_t pad_id = -1;
  int64_t unk_id = -1;
  int64_t cls_id = -1;
  int64_t sep_id = -1;
  int64_t mask_id = -1;

  // The ids lie in [0, size), are distinct, and leave at least one regular token.
  absl::Status validate() const;
  bool is_special(int64_t id) const;
  int64_t regular_count() const { return size - 5; }
  // The k-th regular id in increasing order, k in [0, regular_count()).
  int64_t regular_token(int64_t k) const;
};

struct MlmMaskingOptions {
  float mask_prob = 0.15f;          // fraction of non-special positions chosen
  float mask_token_prob = 0.8f;     // of the chosen: replaced by [MASK]
  float random_token_prob = 0.1f;   // of the chosen: replaced by a random regular token (the rest keep theirs)

  // Probabilities in [0, 1] with mask_token_prob + random_token_prob <= 1.
  absl::Status validate() const;
};

// Philox stream offset of sequence `sequence` seen in epoch `epoch`.
uint64_t mlm_stream_offset(uint64_t epoch, uint64_t sequence);

// Masks one sequence in place. ids[0, length): in, the original ids; out, the
// model's input. labels[0, length): out. Draws from stream (seed, offset).
void mask_sequence(int64_t* ids, int64_t* labels, int64_t length, const MlmVocab& vocab,
                   const MlmMaskingOptions& options, uint64_t seed, uint64_t offset);

// ids int64 (B, T), contiguous CPU, masked in place; returns labels int64 (B, T).
// Row b holds sequence sequence_indices[b] and is masked with
// mlm_stream_offset(epoch, sequence_indices[b]); a row with index -1 (padding)
// is left alone. vocab and options must be valid (validate()); an invalid one,
// a malformed tensor or a wrong number of indices throws.
Tensor mask_batch(Tensor& ids, const MlmVocab& vocab, const MlmMaskingOptions& options, uint64_t seed,
                  uint64_t epoch, const std::vector<int64_t>& sequence_indices);

}  // namespace bertforge
