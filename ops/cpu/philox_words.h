// ops/cpu/philox_words.h — many blocks of a Philox stream at once, in vector registers: the random bits behind the
// CPU dropout masks (ops/dropout.cpp).
//
// The stream and its blocks are those of core/philox.h; philox_words gives the same bits as calling philox_block
// once per block, only faster. A scalar philox_block does its 20 32x32->64-bit products one after another; the
// vector paths compute 8 (AVX2) or 16 (AVX-512F) blocks side by side with vpmuludq. GCC does not find this by
// itself (it widens the products to 64-bit lanes and packs them back, no faster than scalar), hence the intrinsics.
// Dropout with them: tests/bench/bench_ops (dropout_fwd).
// One path per instruction set, every one compiled into every x86-64 build with __attribute__((target(...))) and
// chosen at the first call from what the CPU supports (cpuid):
//   scalar   portable C++ (philox_block in a loop), any CPU;
//   avx2     8 blocks per step;
//   avx512   16 blocks per step, AVX-512F.
// The paths differ in speed only: each is tested bit for bit against philox_block (tests/ops/test_philox_words.cpp).
#pragma once

#include <cstdint>

namespace bertforge::cpu {

enum class PhiloxIsa : uint8_t { kScalar, kAvx2, kAvx512 };

const char* philox_isa_name(PhiloxIsa isa);  // "scalar", "avx2", "avx512"
bool philox_isa_supported(PhiloxIsa isa);     // compiled into this build and supported by this CPU
PhiloxIsa philox_default_isa();               // the widest supported path: the one philox_words takes

// words (4 * num_blocks) = elements [4 first_block, 4 (first_block + num_blocks)) of stream (seed, offset):
// words[4 b + j] = philox_block(seed, offset, first_block + b).x[j]. Single-threaded: callers split the stream.
void philox_words(uint64_t seed, uint64_t offset, uint64_t first_block, int64_t num_blocks, uint32_t* words);
// The same on a given path, which must be supported (tests and benchmarks).
void philox_words(PhiloxIsa isa, uint64_t seed, uint64_t offset, uint64_t first_block, int64_t num_blocks,
                  uint32_t* words);

}  // namespace bertforge::cpu
