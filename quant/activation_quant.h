// Asymmetric activation quantization (docs/design.md "Quantization", seed paper eq. 3): the parameters derived from
// a calibrated range [a_min, a_max] and the fake-quantization kernel used by PTQ evaluation; and the dynamic
// per-token variant, where each row's parameters come from its own min and max at run time.
//
// For b bits, Q = 2^b - 1:
//   s = (a_max - a_min) / Q                    the scale, kept as computed (never rounded to a power of two)
//   z = round(-a_min / s)                      the zero point, an integer (it may fall outside [0, Q] when the
//                                              range does not contain 0)
//   q = clamp(round(a / s) + z, 0, Q)          the integer code
//   fake_quant(a) = (q - z) * s                what the model continues with
// This is the seed's q = round((a - a_min)/s) with a_min replaced by -z s, its nearest point on the grid s Z:
// the grid {(k - z) s : k = 0..Q} then holds 0 exactly whenever a_min <= 0 <= a_max, and every a in
// [a_min, a_max] is within s/2 of its fake-quantized value (the grid's ends lie within s/2 of a_min, a_max).
// Values outside are clamped to the grid's ends. round() is round-half-to-even (std::nearbyint).
//
// A zero-width range [c, c] (a constant activation) has no scale of its own: it is widened to include 0,
// [min(c, 0), max(c, 0)], so c itself stays representable (to float precision); the all-zero range [0, 0] gets
// s = 1, z = 0, so 0 stays exact and anything else rounds to an integer in [0, Q].
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace bertforge {

// A calibrated activation range, a_min <= a_max, both finite.
struct ActivationRange {
  float min = 0.0f;
  float max = 0.0f;
};

struct ActivationQuantParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
  int bits = 8;

  // The parameters of `range` at `bits` (2..16); see the file comment (zero-width ranges included).
  static ActivationQuantParams from_range(const ActivationRange& range, int bits);

  int32_t qmax() const { return (int32_t{1} << bits) - 1; }
  // The smallest and largest values fake quantization returns: -z s and (Q - z) s.
  float grid_min() const { return static_cast<float>(-zero_point) * scale; }
  float grid_max() const { return static_cast<float>(qmax() - zero_point) * scale; }
};

// out[i] = fake_quant(in[i]) for n floats (OpenMP over chunks, a vectorised loop inside). NaN stays NaN,
// +-inf clamps to the grid's ends. in and out may be the same pointer.
void fake_quantize_activation(const float* in, float* out, int64_t n, const ActivationQuantParams& params);

// x: any shape, dtype and device -> a new f32 tensor of x's shape on x's device, detached from the graph.
// The kernel fake_quantize runs where x is: a CUDA kernel on a GPU (cuda/fake_quantize.cu).
Tensor fake_quantize_activation(const Tensor& x, const ActivationQuantParams& params);

// Dynamic per-token fake quantization, the FP reference of the int8 Linear's per-token mode (quant/int8_gemm.h
// quantize_activations_per_row): x any shape (..., K) -> a new f32 tensor of x's shape on x's device (computed on
// the CPU; a tensor elsewhere is copied there and back), detached. Every row r over the last dim is fake-quantized
// with from_range({min(0, min_k x[r,k]), max(0, max_k x[r,k])}, bits). A NaN is left out of its row's range and
// stays NaN; an infinity is an error (no finite range).
Tensor fake_quantize_per_token(const Tensor& x, int bits);

}  // namespace bertforge
