// quant/weight_quant.h — quantizing a weight matrix W (N,K) to integer codes with float scales (and zero points),
// and back (seed paper eqs. 2–3; docs/design.md "Quantization").
//
// Per (s, z) block of W (the whole tensor, a row, or a group of `group_size` columns of a row; quant_scheme.h):
//   symmetric   s = max|w| / (2^(b-1) - 1),        q = clamp(round(w / s), -(2^(b-1) - 1), 2^(b-1) - 1)
//   asymmetric  lo = min(min w, 0), hi = max(max w, 0),
//               s = (hi - lo) / (2^b - 1),          z = round(-lo / s),   q = clamp(round(w / s) + z, 0, 2^b - 1)
// round() is round-half-to-even (std::nearbyint, as torch.round). Scales are never rounded. The asymmetric range is
// widened to contain 0 so that z lies in [0, 2^b - 1] without clamping: then every w in [lo, hi] comes back within
// s/2 (|w - deq(q(w))| <= s/2, up to float rounding) and an exact 0 stays exactly 0. A block whose range is empty
// (all zeros) gets s = 1, q = z = 0, so it dequantizes to exact zeros.
//
// Clipping (AWQ's clip search): max|w| (symmetric) or lo and hi (asymmetric) are multiplied by a ratio c in (0, 1]
// before the scale is computed, and weights beyond the clipped range saturate at the end codes. One ratio per
// output row (all groups of that row), or one for the whole tensor.
//
// Storage (what the quantized checkpoint holds; shapes for W (N,K), G = ceil(K / group_size)):
//   qweight  bits > 4,  symmetric:   I8 (N,K)
//            bits > 4,  asymmetric:  U8 (N,K)
//            bits <= 4:              U8 (N, ceil(K/2)), two codes per byte: column 2j in the LOW nibble (bits 0–3),
//                                    column 2j+1 in the HIGH nibble (bits 4–7); for odd K the last high nibble is 0.
//                                    Symmetric codes are 4-bit two's complement (0xF = -1), asymmetric ones unsigned.
//   scales   F32 (1) per_tensor, (N) per_channel, (N, G) per_group; finite and > 0
//   zeros    U8, same shape as scales, asymmetric only (undefined tensor when symmetric)
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "quant/quant_scheme.h"

namespace bertforge::quant {

struct QuantizedWeight {
  QuantScheme scheme;
  int64_t rows = 0, cols = 0;  // the logical weight W (N,K) = (rows, cols)
  Tensor qweight;              // codes, layout above
  Tensor scales;               // F32
  Tensor zeros;                // U8, asymmetric only

  Shape shape() const { return {rows, cols}; }
  // The code of W[n][k], unpacked (and sign-extended for symmetric 4-bit codes).
  int32_t code(int64_t n, int64_t k) const;
};

// ---- The storage layout, as a function of the scheme and W's shape (one source of truth for writer and reader) ----
DType qweight_dtype(const QuantScheme& scheme);
Shape qweight_shape(const QuantScheme& scheme, int64_t rows, int64_t cols);
Shape scales_shape(const QuantScheme& scheme, int64_t rows, int64_t cols);  // also the shape of zeros
// Number of (s, z) blocks per row: 1 for per_tensor and per_channel, G for per_group.
int64_t groups_per_row(const QuantScheme& scheme, int64_t cols);

// ---- Kernels ------------------------------------------------------------------------------------------------------
// W is F32 (N,K), contiguous or not. clip: empty (no clipping), one ratio, or N ratios (per_channel / per_group),
// each in (0, 1]. Throws (BF_CHECK) on a non-finite weight or a bad argument.
QuantizedWeight quantize_weight(const Tensor& W, const QuantScheme& scheme, const std::vector<float>& clip = {});
// F32 (N,K): s * q (symmetric) or s * (q - z) (asymmetric).
Tensor dequantize(const QuantizedWeight& qw);
// dequantize(quantize_weight(W, scheme, clip)): the weight as the quantized model sees it (PTQ fake-quant).
Tensor fake_quantize_weight(const Tensor& W, const QuantScheme& scheme, const std::vector<float>& clip = {});
// The codes of a symmetric QuantizedWeight as I8 (N,K), unpacked: the operand of the int8 GEMM (int8_gemm.h).
Tensor int8_codes(const QuantizedWeight& qw);

}  // namespace bertforge::quant
