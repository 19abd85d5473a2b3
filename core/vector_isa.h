// core/vector_isa.h — the x86-64 vector instruction sets that the hand-vectorised loops outside the GEMMs are written
// for (the Philox words of the dropout masks, ops/cpu/philox_words.h; the float -> bfloat16 conversion,
// core/bf16_convert.h), and which of them this CPU runs.
//
// Each such loop compiles every path into every x86-64 build with __attribute__((target(...))) and takes the widest
// one the CPU supports (cpuid, at run time), so one binary runs everywhere; a test runs each path the CPU has and
// skips the others with the reason:
//   scalar   portable C++, any CPU;
//   avx2     256-bit vectors (AVX2);
//   avx512   512-bit vectors (AVX-512F).
#pragma once

#include <cstdint>

namespace bertforge {

enum class VectorIsa : uint8_t { kScalar, kAvx2, kAvx512 };

const char* vector_isa_name(VectorIsa isa);  // "scalar", "avx2", "avx512"
bool vector_isa_supported(VectorIsa isa);    // compiled into this build (x86-64) and supported by this CPU
VectorIsa default_vector_isa();              // the widest supported path: the one the loops take

}  // namespace bertforge
