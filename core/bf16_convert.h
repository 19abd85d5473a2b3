// core/bf16_convert.h — float32 -> bfloat16 conversion of whole arrays, vectorised: the mixed-precision casts
// (ops/autocast.h: every GEMM input and what backward keeps of it) go through Tensor::copy_, which converts its
// contiguous rows here.
//
// The result is bit for bit FloatToBf16 (core/half.h) element by element: round to nearest, ties to even, NaN kept
// (quieted), subnormals rounded like any other value. The scalar loop of FloatToBf16 does not vectorise (its NaN
// branch), so a bf16 training step spent a tenth of its time here (perf, 4 layers, hidden 128); the vector paths do
// the same integer arithmetic on 8 or 16 lanes. One path per instruction set (core/vector_isa.h):
//   scalar   FloatToBf16 in a loop;
//   avx2     8 floats per step;
//   avx512   16 floats per step (AVX-512F; not AVX512-BF16's vcvtneps2bf16, which flushes subnormals to zero).
// The paths differ in speed only: tests/core/test_bf16_convert.cpp checks each against FloatToBf16.
#pragma once

#include <cstdint>

#include "core/half.h"
#include "core/vector_isa.h"

namespace bertforge {

// dst[i] = FloatToBf16(src[i]) for i < n, on the widest path this CPU supports. Single-threaded.
void floats_to_bf16(const float* src /* [n] */, bf16* dst /* [n] */, int64_t n);
// The same on a given path, which must be supported (tests and benchmarks).
void floats_to_bf16(VectorIsa isa, const float* src /* [n] */, bf16* dst /* [n] */, int64_t n);

}  // namespace bertforge
