// Philox4x32-10: the counter-based random number generator behind every
// random number in bertforge (initialisation, dropout masks, MLM masking).
//
// Philox (Salmon, Moraes, Dror, Shaw, "Parallel Random Numbers: As Easy as
// 1, 2, 3", SC 2011) is a keyed bijection on 128-bit blocks: ten rounds of
// 32x32->64-bit multiplies and xors scramble a counter under a key. Unlike a
// sequential generator it has no state to carry around: the n-th random block
// is simply philox(counter = n, key). Constants are those of Random123 and
// cuRAND, so the known-answer vectors of Random123 apply.
//
// The stream. A stream is named by (seed, offset), both uint64. Its element i
// (uint64) is
//
//     word (i % 4) of philox4x32_10(counter = {lo32(i / 4), hi32(i / 4), lo32(offset), hi32(offset)},
//                                   key     = {lo32(seed), hi32(seed)})
//
// so every element is a pure function of (seed, offset, i): a CPU loop and a
// GPU thread computing element i alone get the same bits, and a backward pass
// can regenerate a dropout mask instead of storing it. Different offsets use
// disjoint counters, so streams never overlap; philox_stream_offset() folds
// (step, rank, tensor id, ...) into one offset.
//
// Distributions, element i of stream (seed, offset), all computed from block i / 4:
//   philox_uint32    the raw 32-bit word.
//   philox_uniform   float in [0, 1): top 24 bits of the word times 2^-24 (exact in float).
//   philox_bernoulli philox_uniform(...) < p, exact, so CPU and GPU masks agree bit for bit.
//   philox_normal    Box-Muller on the block's word pairs (0, 1) and (2, 3): for j = i % 4,
//                    the pair (w[2*(j/2)], w[2*(j/2)+1]) gives u1 in (0, 1] and u2 in [0, 1);
//                    even j returns sqrt(-2 ln u1) cos(2 pi u2), odd j the sine. It uses float
//                    logf/sinf/cosf, so CPU and GPU may differ in the last bits.
//
// The inline functions are marked BF_HOST_DEVICE and use no std:: containers,
// so CUDA kernels can include this header and call them directly.
#pragma once

#include <math.h>  // logf, sqrtf, sinf, cosf: callable from host and device code

#include <cstdint>

#include "core/host_device.h"

namespace bertforge {

class Tensor;

struct Uint32x4 {
  uint32_t x[4];
};
struct Uint32x2 {
  uint32_t x[2];
};

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;  // round multipliers
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // key schedule (Weyl) increments
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

// One Philox round: two 32x32->64-bit products, whose high halves are xored
// with the other words and the key, and the words are permuted.
BF_HOST_DEVICE inline Uint32x4 philox_round(Uint32x4 c, Uint32x2 key) {
  const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c.x[0];
  const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c.x[2];
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return Uint32x4{{hi1 ^ c.x[1] ^ key.x[0], lo1, hi0 ^ c.x[3] ^ key.x[1], lo0}};
}

// The Philox4x32 block function with 10 rounds; the key grows by (W0, W1)
// between rounds.
BF_HOST_DEVICE inline Uint32x4 philox4x32_10(Uint32x4 counter, Uint32x2 key) {
  counter = philox_round(counter, key);
  for (int round = 1; round < 10; ++round) {
    key.x[0] += kPhiloxW0;
    key.x[1] += kPhiloxW1;
    counter = philox_round(counter, key);
  }
  return counter;
}

// The block holding elements [4 * block, 4 * block + 4) of stream (seed, offset).
BF_HOST_DEVICE inline Uint32x4 philox_block(uint64_t seed, uint64_t offset, uint64_t block) {
  const Uint32x4 counter{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                          static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)}};
  const Uint32x2 key{{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}};
  return philox4x32_10(counter, key);
}

// ---- Word -> value transforms, shared by the per-element functions and the fillers ----

// [0, 1): the top 24 bits, so the float is exact and never rounds up to 1.
BF_HOST_DEVICE inline float philox_word_to_uniform(uint32_t w) {
  return static_cast<float>(w >> 8) * (1.0f / 16777216.0f);
}

// Standard normal number `j` (0..3) of a block: pair j/2 feeds Box-Muller,
// j even takes the cosine and j odd the sine.
BF_HOST_DEVICE inline float philox_block_normal(const Uint32x4& b, int j) {
  const uint32_t w1 = b.x[2 * (j / 2)], w2 = b.x[2 * (j / 2) + 1];
  const float u1 = static_cast<float>((w1 >> 8) + 1u) * (1.0f / 16777216.0f);  // (0, 1]: log is finite
  const float u2 = philox_word_to_uniform(w2);
  const float radius = sqrtf(-2.0f * logf(u1));
  const float angle = 6.2831853071795864769f * u2;
  return radius * ((j % 2 == 0) ? cosf(angle) : sinf(angle));
}

// ---- Element i of stream (seed, offset) ------------------------------------------

BF_HOST_DEVICE inline uint32_t philox_uint32(uint64_t seed, uint64_t offset, uint64_t i) {
  return philox_block(seed, offset, i / 4).x[i % 4];
}

BF_HOST_DEVICE inline float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  return philox_word_to_uniform(philox_uint32(seed, offset, i));
}

BF_HOST_DEVICE inline float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  return philox_block_normal(philox_block(seed, offset, i / 4), static_cast<int>(i % 4));
}

// True with probability p (p <= 0: never, p >= 1: always).
BF_HOST_DEVICE inline bool philox_bernoulli(uint64_t seed, uint64_t offset, uint64_t i, float p) {
  return philox_uniform(seed, offset, i) < p;
}

// ---- Naming streams ------------------------------------------------------------------

// The splitmix64 finaliser (Steele, Lea, Flood 2014): a bijection on uint64
// whose output bits each depend on all input bits.
BF_HOST_DEVICE inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One stream offset from up to four integers, e.g. (step, rank, tensor id, 0)
// for a dropout mask. Order matters: (1, 2, ...) and (2, 1, ...) differ.
// Distinct tuples collide with probability about 2^-64.
BF_HOST_DEVICE inline uint64_t philox_stream_offset(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  uint64_t h = splitmix64(a);
  h = splitmix64(h ^ b);
  h = splitmix64(h ^ c);
  return splitmix64(h ^ d);
}

// ---- CPU tensor fillers ---------------------------------------------------------------
// `t` must be a contiguous f32 CPU tensor; its element k (row-major) receives
// element k of stream (seed, offset). Parallel with OpenMP; the result does not
// depend on the number of threads.

// low + (high - low) * u, u uniform in [0, 1).
void fill_uniform(Tensor& t, uint64_t seed, uint64_t offset, float low, float high);
// mean + stddev * z, z standard normal.
void fill_normal(Tensor& t, uint64_t seed, uint64_t offset, float mean, float stddev);
// 1 with probability p, else 0.
void fill_bernoulli(Tensor& t, uint64_t seed, uint64_t offset, float p);

}  // namespace bertforge
