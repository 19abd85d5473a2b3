// quant/weight_quant.cpp — quantize / dequantize kernels for weight matrices (formulas in weight_quant.h).
//
// Work is split over rows with OpenMP; inside a row the loops run over one (s, z) block at a time with the block's
// parameters hoisted, so they vectorise (divide, round, clamp, convert).
#include "quant/weight_quant.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include <omp.h>

#include "core/check.h"

namespace bertforge::quant {
namespace {

constexpr int64_t kRowsPerThreadMin = 16;  // fewer rows than this per thread: not worth waking threads

// ceil(n / d) for n >= 0, d > 0, without the overflow of (n + d - 1) / d near INT64_MAX (a checkpoint's metadata
// may claim such a logical shape; the loader must refuse it, not overflow).
int64_t ceil_div(int64_t n, int64_t d) { return n / d + (n % d != 0 ? 1 : 0); }

struct BlockParams {
  float scale = 1.0f;
  int32_t zero = 0;
};

// s = amax / qmax (never below the smallest normal float, so w / s stays finite); an all-zero block gets s = 1.
BlockParams symmetric_params(float amax, int32_t qmax) {
  if (!(amax > 0.0f)) return {};
  return {std::max(amax / static_cast<float>(qmax), FLT_MIN), 0};
}

// lo <= 0 <= hi; s = (hi - lo) / qmax, z = round(-lo / s), which lies in [0, qmax] up to float rounding.
BlockParams asymmetric_params(float lo, float hi, int32_t qmax) {
  const float range = hi - lo;
  if (!(range > 0.0f)) return {};
  const float s = std::max(range / static_cast<float>(qmax), FLT_MIN);
  const float z = std::min(std::max(std::nearbyint(-lo / s), 0.0f), static_cast<float>(qmax));
  return {s, static_cast<int32_t>(z)};
}

// [begin, end) of block `g` of a row of `cols` columns.
void block_range(const QuantScheme& scheme, int64_t cols, int64_t g, int64_t* begin, int64_t* end) {
  if (scheme.granularity == Granularity::kPerGroup) {
    *begin = g * scheme.group_size;
    *end = std::min(cols, *begin + scheme.group_size);
  } else {
    *begin = 0;
    *end = cols;
  }
}

// The (s, z) of the values w[0, n) scaled by clip ratio c.
BlockParams params_of(const QuantScheme& scheme, const float* w, int64_t n, float c) {
  if (scheme.symmetric) {
    float amax = 0.0f;
    for (int64_t k = 0; k < n; ++k) amax = std::max(amax, std::fabs(w[k]));
    return symmetric_params(amax * c, scheme.qmax());
  }
  float lo = 0.0f, hi = 0.0f;
  for (int64_t k = 0; k < n; ++k) lo = std::min(lo, w[k]), hi = std::max(hi, w[k]);
  return asymmetric_params(lo * c, hi * c, scheme.qmax());
}

// codes[k] = clamp(round(w[k] / s) + z, qmin, qmax) for k < n.
void quantize_block(const float* w, int64_t n, BlockParams p, int32_t qmin, int32_t qmax, int32_t* codes) {
  const float s = p.scale, z = static_cast<float>(p.zero), lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
  for (int64_t k = 0; k < n; ++k) {
    codes[k] = static_cast<int32_t>(std::min(std::max(std::nearbyint(w[k] / s) + z, lo), hi));
  }
}

// Stores one row of codes in the qweight layout.
void store_codes(const QuantScheme& scheme, const int32_t* codes, int64_t cols, void* row) {
  if (scheme.packed()) {
    uint8_t* out = static_cast<uint8_t*>(row);
    for (int64_t j = 0; j < cols / 2; ++j) {
      out[j] = static_cast<uint8_t>((codes[2 * j] & 0xF) | ((codes[2 * j + 1] & 0xF) << 4));
    }
    if (cols % 2 == 1) out[cols / 2] = static_cast<uint8_t>(codes[cols - 1] & 0xF);
  } else if (scheme.symmetric) {
    int8_t* out = static_cast<int8_t*>(row);
    for (int64_t k = 0; k < cols; ++k) out[k] = static_cast<int8_t>(codes[k]);
  } else {
    uint8_t* out = static_cast<uint8_t*>(row);
    for (int64_t k = 0; k < cols; ++k) out[k] = static_cast<uint8_t>(codes[k]);
  }
}

// Reads one row of codes back from the qweight layout.
void load_codes(const QuantScheme& scheme, const void* row, int64_t cols, int32_t* codes) {
  if (scheme.packed()) {
    const uint8_t* in = static_cast<const uint8_t*>(row);
    for (int64_t k = 0; k < cols; ++k) {
      const uint8_t nibble = (in[k / 2] >> (4 * (k % 2))) & 0xF;
      // Symmetric: sign-extend the 4-bit two's complement value.
      codes[k] = scheme.symmetric ? static_cast<int32_t>(static_cast<int8_t>(nibble << 4) >> 4) : nibble;
    }
  } else if (scheme.symmetric) {
    const int8_t* in = static_cast<const int8_t*>(row);
    for (int64_t k = 0; k < cols; ++k) codes[k] = in[k];
  } else {
    const uint8_t* in = static_cast<const uint8_t*>(row);
    for (int64_t k = 0; k < cols; ++k) codes[k] = in[k];
  }
}

int64_t row_bytes(const QuantizedWeight& qw) { return qw.qweight.size(1) * dtype_size(qw.qweight.dtype()); }

int threads_for_rows(int64_t rows) {
  return static_cast<int>(std::clamp<int64_t>(rows / kRowsPerThreadMin, 1, static_cast<int64_t>(omp_get_max_threads())));
}

}  // namespace

DType qweight_dtype(const QuantScheme& scheme) {
  return scheme.packed() || !scheme.symmetric ? DType::kU8 : DType::kI8;
}

Shape qweight_shape(const QuantScheme& scheme, int64_t rows, int64_t cols) {
  return {rows, scheme.packed() ? ceil_div(cols, 2) : cols};
}

int64_t groups_per_row(const QuantScheme& scheme, int64_t cols) {
  if (scheme.granularity != Granularity::kPerGroup) return 1;
  return std::max<int64_t>(1, ceil_div(cols, scheme.group_size));
}

Shape scales_shape(const QuantScheme& scheme, int64_t rows, int64_t cols) {
  switch (scheme.granularity) {
    case Granularity::kPerTensor: return {1};
    case Granularity::kPerChannel: return {rows};
    case Granularity::kPerGroup: return {rows, groups_per_row(scheme, cols)};
  }
  BF_FAIL("scales_shape: invalid granularity");
}

int32_t QuantizedWeight::code(int64_t n, int64_t k) const {
  BF_CHECK(n >= 0 && n < rows && k >= 0 && k < cols, "QuantizedWeight::code(", n, ", ", k, ") outside ",
           shape_to_string(shape()));
  const uint8_t* row = static_cast<const uint8_t*>(qweight.raw_data()) + n * qweight.size(1) * dtype_size(qweight.dtype());
  if (scheme.packed()) {
    const uint8_t nibble = (row[k / 2] >> (4 * (k % 2))) & 0xF;
    return scheme.symmetric ? static_cast<int8_t>(nibble << 4) >> 4 : nibble;
  }
  return scheme.symmetric ? static_cast<int8_t>(row[k]) : row[k];
}

QuantizedWeight quantize_weight(const Tensor& W, const QuantScheme& scheme, const std::vector<float>& clip) {
  BF_CHECK(scheme.validate().ok(), "quantize_weight: ", scheme.validate().message());
  BF_CHECK(W.dim() == 2 && W.dtype() == DType::kF32 && W.device().is_cpu(),
           "quantize_weight: W must be a 2-D f32 CPU tensor (N,K), got ", W.str());
  const int64_t N = W.size(0), K = W.size(1);
  BF_CHECK(clip.empty() || clip.size() == 1 ||
               (scheme.granularity != Granularity::kPerTensor && static_cast<int64_t>(clip.size()) == N),
           "quantize_weight: ", clip.size(), " clip ratios for a ", scheme.str(), " weight of ", N,
           " rows (expected none, 1, or one per row)");
  for (float c : clip) BF_CHECK(c > 0.0f && c <= 1.0f, "quantize_weight: clip ratio ", c, " outside (0, 1]");
  auto clip_of = [&](int64_t n) { return clip.empty() ? 1.0f : clip.size() == 1 ? clip[0] : clip[n]; };

  const Tensor w = W.contiguous();
  const float* wd = w.data<float>();
  for (int64_t i = 0; i < w.numel(); ++i) {
    BF_CHECK(std::isfinite(wd[i]), "quantize_weight: non-finite weight ", wd[i], " at row ", i / std::max<int64_t>(K, 1),
             ", column ", i % std::max<int64_t>(K, 1));
  }

  QuantizedWeight qw;
  qw.scheme = scheme;
  qw.rows = N;
  qw.cols = K;
  qw.qweight = Tensor::zeros(qweight_shape(scheme, N, K), qweight_dtype(scheme));
  qw.scales = Tensor::empty(scales_shape(scheme, N, K), DType::kF32);
  if (!scheme.symmetric) qw.zeros = Tensor::empty(scales_shape(scheme, N, K), DType::kU8);
  const int64_t G = groups_per_row(scheme, K);
  float* scales = qw.scales.data<float>();
  uint8_t* zeros = scheme.symmetric ? nullptr : qw.zeros.data<uint8_t>();

  // Per tensor: one block over everything (its clip ratio is the single one given).
  BlockParams tensor_params;
  if (scheme.granularity == Granularity::kPerTensor) {
    tensor_params = params_of(scheme, wd, N * K, clip_of(0));
    scales[0] = tensor_params.scale;
    if (zeros != nullptr) zeros[0] = static_cast<uint8_t>(tensor_params.zero);
  }

  uint8_t* qdata = static_cast<uint8_t*>(qw.qweight.raw_data());
  const int64_t qrow_bytes = row_bytes(qw);
#pragma omp parallel num_threads(threads_for_rows(N))
  {
    std::vector<int32_t> codes(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* wrow = wd + n * K;
      for (int64_t g = 0; g < G; ++g) {
        int64_t k0 = 0, k1 = 0;
        block_range(scheme, K, g, &k0, &k1);
        BlockParams p = tensor_params;
        if (scheme.granularity != Granularity::kPerTensor) {
          p = params_of(scheme, wrow + k0, k1 - k0, clip_of(n));
          scales[n * G + g] = p.scale;
          if (zeros != nullptr) zeros[n * G + g] = static_cast<uint8_t>(p.zero);
        }
        quantize_block(wrow + k0, k1 - k0, p, scheme.qmin(), scheme.qmax(), codes.data() + k0);
      }
      store_codes(scheme, codes.data(), K, qdata + n * qrow_bytes);
    }
  }
  return qw;
}

Tensor dequantize(const QuantizedWeight& qw) {
  const QuantScheme& scheme = qw.scheme;
  const int64_t N = qw.rows, K = qw.cols, G = groups_per_row(scheme, K);
  BF_CHECK(qw.qweight.defined() && qw.qweight.dtype() == qweight_dtype(scheme) &&
               qw.qweight.shape() == qweight_shape(scheme, N, K) && qw.qweight.is_contiguous(),
           "dequantize: qweight ", qw.qweight.defined() ? qw.qweight.str() : "undefined", " does not match ",
           scheme.str(), " for W ", shape_to_string(qw.shape()));
  BF_CHECK(qw.scales.defined() && qw.scales.dtype() == DType::kF32 && qw.scales.shape() == scales_shape(scheme, N, K),
           "dequantize: bad scales for ", scheme.str());
  BF_CHECK(scheme.symmetric || (qw.zeros.defined() && qw.zeros.dtype() == DType::kU8 &&
                                qw.zeros.shape() == scales_shape(scheme, N, K)),
           "dequantize: asymmetric scheme needs U8 zeros of shape ", shape_to_string(scales_shape(scheme, N, K)));
  Tensor out = Tensor::empty({N, K}, DType::kF32);
  float* od = out.data<float>();
  const Tensor scales_c = qw.scales.contiguous();
  const float* scales = scales_c.data<float>();
  const Tensor zeros_c = scheme.symmetric ? Tensor() : qw.zeros.contiguous();
  const uint8_t* zeros = scheme.symmetric ? nullptr : zeros_c.data<uint8_t>();
  const uint8_t* qdata = static_cast<const uint8_t*>(qw.qweight.raw_data());
  const int64_t qrow_bytes = row_bytes(qw);
  const bool per_tensor = scheme.granularity == Granularity::kPerTensor;
#pragma omp parallel num_threads(threads_for_rows(N))
  {
    std::vector<int32_t> codes(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      load_codes(scheme, qdata + n * qrow_bytes, K, codes.data());
      float* orow = od + n * K;
      for (int64_t g = 0; g < G; ++g) {
        int64_t k0 = 0, k1 = 0;
        block_range(scheme, K, g, &k0, &k1);
        const int64_t b = per_tensor ? 0 : n * G + g;
        const float s = scales[b];
        const int32_t z = zeros == nullptr ? 0 : zeros[b];
        for (int64_t k = k0; k < k1; ++k) orow[k] = static_cast<float>(codes[k] - z) * s;
      }
    }
  }
  return out;
}

Tensor fake_quantize_weight(const Tensor& W, const QuantScheme& scheme, const std::vector<float>& clip) {
  return dequantize(quantize_weight(W, scheme, clip));
}

Tensor int8_codes(const QuantizedWeight& qw) {
  BF_CHECK(qw.scheme.symmetric, "int8_codes: needs a symmetric scheme, got ", qw.scheme.str());
  if (!qw.scheme.packed()) return qw.qweight.contiguous();
  Tensor out = Tensor::empty({qw.rows, qw.cols}, DType::kI8);
  int8_t* od = out.data<int8_t>();
  const uint8_t* qdata = static_cast<const uint8_t*>(qw.qweight.raw_data());
  const int64_t qrow_bytes = row_bytes(qw);
#pragma omp parallel num_threads(threads_for_rows(qw.rows))
  {
    std::vector<int32_t> codes(static_cast<size_t>(qw.cols));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < qw.rows; ++n) {
      load_codes(qw.scheme, qdata + n * qrow_bytes, qw.cols, codes.data());
      for (int64_t k = 0; k < qw.cols; ++k) od[n * qw.cols + k] = static_cast<int8_t>(codes[k]);
    }
  }
  return out;
}

}  // namespace bertforge::quant
