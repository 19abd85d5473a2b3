// The per-sample mask of head dropout (DropHead), shared by the CPU kernel and
// a CUDA kernel: a pure function of (seed, offset, sample, heads, p).
//
// Sample b draws one decision per head: head h is kept iff
// philox_uniform(seed, offset, i) >= p. A draw that drops every head is
// redrawn, so attempt k (0, 1, ...) of sample b reads the stream elements
//
//     i = (b * kHeadDropoutMaxAttempts + k) * heads + h,   h < heads,
//
// which never overlap between samples or attempts and do not depend on the
// batch size. If all kHeadDropoutMaxAttempts attempts drop every head (for
// p = 0.9 and 12 heads the chance is 0.28^64, about 1e-35) every head is kept
// with scale 1, so the result is always defined. Kept heads are scaled by
// heads / kept, keeping the expected sum over heads unchanged.
#pragma once

#include <cstdint>

#include "core/philox.h"

namespace bertforge {

inline constexpr int kHeadDropoutMaxAttempts = 64;
inline constexpr int kHeadDropoutMaxHeads = 64;  // keep flags fit in one uint64

struct HeadDropoutMask {
  uint64_t keep_bits;  // bit h set: head h is kept
  float scale;         // heads / popcount(keep_bits), applied to kept heads
};

// The mask of sample `sample` (heads <= kHeadDropoutMaxHeads, 0 <= p < 1).
BF_HOST_DEVICE inline HeadDropoutMask head_dropout_mask(uint64_t seed, uint64_t offset, uint64_t sample, int heads,
                                                        float p) {
  for (int attempt = 0; attempt < kHeadDropoutMaxAttempts; ++attempt) {
    const uint64_t first = (sample * kHeadDropoutMaxAttempts + attempt) * static_cast<uint64_t>(heads);
    uint64_t keep_bits = 0;
    int kept = 0;
    Uint32x4 block{};
    for (int h = 0; h < heads; ++h) {
      const uint64_t i = first + h;
      if (h == 0 || i % 4 == 0) block = philox_block(seed, offset, i / 4);  // one block serves 4 heads
      if (philox_word_to_uniform(block.x[i % 4]) >= p) {
        keep_bits |= uint64_t{1} << h;
        ++kept;
      }
    }
    if (kept > 0) return HeadDropoutMask{keep_bits, static_cast<float>(heads) / static_cast<float>(kept)};
  }
  const uint64_t all = heads == 64 ? ~uint64_t{0} : (uint64_t{1} << heads) - 1;
  return HeadDropoutMask{all, 1.0f};
}

}  // namespace bertforge
