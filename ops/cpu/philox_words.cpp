// ops/cpu/philox_words.cpp — the paths of philox_words (see philox_words.h): scalar, AVX2, AVX-512F, and the choice.
//
// A vector path holds word j of L blocks in one register cj (lane l: block base + l) and runs philox_round on all
// of them at once. The products' high halves: vpmuludq multiplies the even 32-bit lanes into 64-bit results, so
// the odd lanes are shifted down and multiplied separately, and a blend puts the high halves back into 32-bit lanes;
// the low halves are one vpmulld. Two such sets of registers are in flight per step, as each round waits on the
// last. Then a 4 x L transpose turns the words into block order (word j of block b at 4 b + j) for the store.
#include "ops/cpu/philox_words.h"

#include <cstring>

#include "core/check.h"
#include "core/philox.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bertforge::cpu {
namespace {

void philox_words_scalar(uint64_t seed, uint64_t offset, uint64_t first_block, int64_t num_blocks,
                         uint32_t* words) {
  for (int64_t b = 0; b < num_blocks; ++b) {
    const Uint32x4 block = philox_block(seed, offset, first_block + static_cast<uint64_t>(b));
    std::memcpy(words + 4 * b, block.x, sizeof(block.x));
  }
}

// Counter words 0 and 1 (the block number's low and high halves) of kLanes consecutive blocks from `first`.
template <int kLanes>
void block_counters(uint64_t first, uint32_t (&low)[kLanes], uint32_t (&high)[kLanes]) {
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t block = first + static_cast<uint64_t>(l);
    low[l] = static_cast<uint32_t>(block);
    high[l] = static_cast<uint32_t>(block >> 32);
  }
}

// Runs `step(first_block, out)` for every whole vector of kLanes blocks, and once more into a scratch buffer for a
// partial last vector, whose leading blocks are then copied out.
template <int kLanes, typename Step>
void for_each_vector(uint64_t first_block, int64_t num_blocks, uint32_t* words, Step step) {
  int64_t b = 0;
  for (; b + kLanes <= num_blocks; b += kLanes) step(first_block + static_cast<uint64_t>(b), words + 4 * b);
  if (b < num_blocks) {
    alignas(64) uint32_t tail[4 * kLanes];
    step(first_block + static_cast<uint64_t>(b), tail);
    std::memcpy(words + 4 * b, tail, static_cast<size_t>(num_blocks - b) * 4 * sizeof(uint32_t));
  }
}

#if defined(__x86_64__)

#define BF_TARGET_AVX2 __attribute__((target("avx2")))
#define BF_TARGET_AVX512 __attribute__((target("avx512f")))

constexpr int kRegisters = 2;  // independent vectors per step: the rounds of one are a chain of dependent ops

// (high, low) 32-bit halves of c * m, lane by lane; m holds the multiplier in every 32-bit lane.
BF_TARGET_AVX2 inline void mul_hi_lo(__m256i c, __m256i m, __m256i& high, __m256i& low) {
  const __m256i even = _mm256_mul_epu32(c, m);                         // lanes 0, 2, ...: 64-bit products
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(c, 32), m);  // lanes 1, 3, ...
  high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  low = _mm256_mullo_epi32(c, m);
}

BF_TARGET_AVX2 void philox_words_avx2(uint64_t seed, uint64_t offset, uint64_t first_block, int64_t num_blocks,
                                      uint32_t* words) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
  for_each_vector<8 * kRegisters>(first_block, num_blocks, words, [&](uint64_t first, uint32_t* out) BF_TARGET_AVX2 {
    alignas(32) uint32_t low[8 * kRegisters], high[8 * kRegisters];
    block_counters<8 * kRegisters>(first, low, high);
    __m256i c0[kRegisters], c1[kRegisters], c2[kRegisters], c3[kRegisters];
    for (int r = 0; r < kRegisters; ++r) {
      c0[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(low + 8 * r));
      c1[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(high + 8 * r));
      c2[r] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(offset)));
      c3[r] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(offset >> 32)));
    }
    __m256i key0 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(seed)));
    __m256i key1 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(seed >> 32)));
    const __m256i w0 = _mm256_set1_epi32(static_cast<int>(kPhiloxW0));
    const __m256i w1 = _mm256_set1_epi32(static_cast<int>(kPhiloxW1));
    for (int round = 0; round < 10; ++round) {
      for (int r = 0; r < kRegisters; ++r) {
        __m256i high0, low0, high1, low1;
        mul_hi_lo(c0[r], m0, high0, low0);
        mul_hi_lo(c2[r], m1, high1, low1);
        c0[r] = _mm256_xor_si256(_mm256_xor_si256(high1, c1[r]), key0);
        c1[r] = low1;
        c2[r] = _mm256_xor_si256(_mm256_xor_si256(high0, c3[r]), key1);
        c3[r] = low0;
      }
      key0 = _mm256_add_epi32(key0, w0);
      key1 = _mm256_add_epi32(key1, w1);
    }
    for (int r = 0; r < kRegisters; ++r) {
      // Transpose: t0 = (c0 c1 of blocks 0 1 | 4 5), ...; u0 = block 0 | block 4, u1 = 1 | 5, u2 = 2 | 6, u3 = 3 | 7.
      const __m256i t0 = _mm256_unpacklo_epi32(c0[r], c1[r]), t1 = _mm256_unpacklo_epi32(c2[r], c3[r]);
      const __m256i t2 = _mm256_unpackhi_epi32(c0[r], c1[r]), t3 = _mm256_unpackhi_epi32(c2[r], c3[r]);
      const __m256i u0 = _mm256_unpacklo_epi64(t0, t1), u1 = _mm256_unpackhi_epi64(t0, t1);
      const __m256i u2 = _mm256_unpacklo_epi64(t2, t3), u3 = _mm256_unpackhi_epi64(t2, t3);
      __m256i* dst = reinterpret_cast<__m256i*>(out + 32 * r);
      _mm256_storeu_si256(dst + 0, _mm256_permute2x128_si256(u0, u1, 0x20));  // blocks 0, 1
      _mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(u2, u3, 0x20));  // blocks 2, 3
      _mm256_storeu_si256(dst + 2, _mm256_permute2x128_si256(u0, u1, 0x31));  // blocks 4, 5
      _mm256_storeu_si256(dst + 3, _mm256_permute2x128_si256(u2, u3, 0x31));  // blocks 6, 7
    }
  });
}

BF_TARGET_AVX512 inline void mul_hi_lo(__m512i c, __m512i m, __m512i& high, __m512i& low) {
  const __m512i even = _mm512_mul_epu32(c, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);
  high = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  low = _mm512_mullo_epi32(c, m);
}

BF_TARGET_AVX512 void philox_words_avx512(uint64_t seed, uint64_t offset, uint64_t first_block, int64_t num_blocks,
                                          uint32_t* words) {
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(kPhiloxM1));
  for_each_vector<16 * kRegisters>(first_block, num_blocks, words, [&](uint64_t first, uint32_t* out) BF_TARGET_AVX512 {
    alignas(64) uint32_t low[16 * kRegisters], high[16 * kRegisters];
    block_counters<16 * kRegisters>(first, low, high);
    __m512i c0[kRegisters], c1[kRegisters], c2[kRegisters], c3[kRegisters];
    for (int r = 0; r < kRegisters; ++r) {
      c0[r] = _mm512_load_si512(low + 16 * r);
      c1[r] = _mm512_load_si512(high + 16 * r);
      c2[r] = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(offset)));
      c3[r] = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(offset >> 32)));
    }
    __m512i key0 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(seed)));
    __m512i key1 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(seed >> 32)));
    const __m512i w0 = _mm512_set1_epi32(static_cast<int>(kPhiloxW0));
    const __m512i w1 = _mm512_set1_epi32(static_cast<int>(kPhiloxW1));
    for (int round = 0; round < 10; ++round) {
      for (int r = 0; r < kRegisters; ++r) {
        __m512i high0, low0, high1, low1;
        mul_hi_lo(c0[r], m0, high0, low0);
        mul_hi_lo(c2[r], m1, high1, low1);
        c0[r] = _mm512_xor_si512(_mm512_xor_si512(high1, c1[r]), key0);
        c1[r] = low1;
        c2[r] = _mm512_xor_si512(_mm512_xor_si512(high0, c3[r]), key1);
        c3[r] = low0;
      }
      key0 = _mm512_add_epi32(key0, w0);
      key1 = _mm512_add_epi32(key1, w1);
    }
    for (int r = 0; r < kRegisters; ++r) {
      // As in AVX2, per 128-bit lane: u0 = blocks 0 4 8 12, u1 = 1 5 9 13, u2 = 2 6 10 14, u3 = 3 7 11 15.
      const __m512i t0 = _mm512_unpacklo_epi32(c0[r], c1[r]), t1 = _mm512_unpacklo_epi32(c2[r], c3[r]);
      const __m512i t2 = _mm512_unpackhi_epi32(c0[r], c1[r]), t3 = _mm512_unpackhi_epi32(c2[r], c3[r]);
      const __m512i u0 = _mm512_unpacklo_epi64(t0, t1), u1 = _mm512_unpackhi_epi64(t0, t1);
      const __m512i u2 = _mm512_unpacklo_epi64(t2, t3), u3 = _mm512_unpackhi_epi64(t2, t3);
      // Then whole 128-bit lanes: v0 = blocks 0 4 1 5, v1 = 2 6 3 7, v2 = 8 12 9 13, v3 = 10 14 11 15.
      const __m512i v0 = _mm512_shuffle_i64x2(u0, u1, 0x44), v1 = _mm512_shuffle_i64x2(u2, u3, 0x44);
      const __m512i v2 = _mm512_shuffle_i64x2(u0, u1, 0xEE), v3 = _mm512_shuffle_i64x2(u2, u3, 0xEE);
      uint32_t* dst = out + 64 * r;
      _mm512_storeu_si512(dst + 0, _mm512_shuffle_i64x2(v0, v1, 0x88));   // blocks 0-3
      _mm512_storeu_si512(dst + 16, _mm512_shuffle_i64x2(v0, v1, 0xDD));  // blocks 4-7
      _mm512_storeu_si512(dst + 32, _mm512_shuffle_i64x2(v2, v3, 0x88));  // blocks 8-11
      _mm512_storeu_si512(dst + 48, _mm512_shuffle_i64x2(v2, v3, 0xDD));  // blocks 12-15
    }
  });
}

#undef BF_TARGET_AVX2
#undef BF_TARGET_AVX512

}  // namespace

bool philox_isa_supported(PhiloxIsa isa) {
  switch (isa) {
    case PhiloxIsa::kScalar: return true;
    case PhiloxIsa::kAvx2: return __builtin_cpu_supports("avx2");
    case PhiloxIsa::kAvx512: return __builtin_cpu_supports("avx512f");
  }
  return false;
}

#else  // not x86-64: only the scalar path

}  // namespace

bool philox_isa_supported(PhiloxIsa isa) { return isa == PhiloxIsa::kScalar; }

#endif

const char* philox_isa_name(PhiloxIsa isa) {
  switch (isa) {
    case PhiloxIsa::kScalar: return "scalar";
    case PhiloxIsa::kAvx2: return "avx2";
    case PhiloxIsa::kAvx512: return "avx512";
  }
  return "unknown";
}

PhiloxIsa philox_default_isa() {
  static const PhiloxIsa isa = philox_isa_supported(PhiloxIsa::kAvx512) ? PhiloxIsa::kAvx512
                               : philox_isa_supported(PhiloxIsa::kAvx2) ? PhiloxIsa::kAvx2
                                                           : PhiloxIsa::kScalar;
  return isa;
}

void philox_words(PhiloxIsa isa, uint64_t seed, uint64_t offset, uint64_t first_block, int64_t num_blocks,
                  uint32_t* words) {
  BF_CHECK(philox_isa_supported(isa), "philox_words: the ", philox_isa_name(isa), " path is not available here");
  switch (isa) {
#if defined(__x86_64__)
    case PhiloxIsa::kAvx2: return philox_words_avx2(seed, offset, first_block, num_blocks, words);
    case PhiloxIsa::kAvx512: return philox_words_avx512(seed, offset, first_block, num_blocks, words);
#endif
    default: return philox_words_scalar(seed, offset, first_block, num_blocks, words);
  }
}

void philox_words(uint64_t seed, uint64_t offset, uint64_t first_block, int64_t num_blocks, uint32_t* words) {
  philox_words(philox_default_isa(), seed, offset, first_block, num_blocks, words);
}

}  // namespace bertforge::cpu
