// Tests for quant/weight_quant.h: scales against the closed forms of docs/design.md (recomputed with plain loops in
// double), the round-trip bound |w - deq(q(w))| <= s/2 for every bit width, symmetry and granularity, the storage
// layout (nibble order, dtypes, shapes), zero ranges, clipping and argument checks.
#include "quant/weight_quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/support/test_support.h"

namespace bertforge::quant {
namespace {

using test_support::random_tensor;

// The (s, z) the closed forms give for block values w[0, n), clip ratio c, in double.
struct Expected {
  double scale;
  int zero;
};
Expected expected_params(const QuantScheme& s, const std::vector<float>& w, double c) {
  if (s.symmetric) {
    double amax = 0;
    for (float x : w) amax = std::max(amax, std::fabs(double{x}));
    amax *= c;
    return {amax > 0 ? amax / ((1 << (s.bits - 1)) - 1) : 1.0, 0};
  }
  double lo = 0, hi = 0;  // the range always contains 0
  for (float x : w) lo = std::min(lo, double{x}), hi = std::max(hi, double{x});
  lo *= c, hi *= c;
  if (hi - lo <= 0) return {1.0, 0};
  const double scale = (hi - lo) / ((1 << s.bits) - 1);
  return {scale, static_cast<int>(std::nearbyint(-lo / scale))};
}

// The values of block (n, g) of W (N,K) under the scheme.
std::vector<float> block_values(const Tensor& W, const QuantScheme& s, int64_t n, int64_t g) {
  const int64_t K = W.size(1);
  const float* w = W.data<float>();
  if (s.granularity == Granularity::kPerTensor) return std::vector<float>(w, w + W.numel());
  int64_t k0 = 0, k1 = K;
  if (s.granularity == Granularity::kPerGroup) k0 = g * s.group_size, k1 = std::min(K, k0 + s.group_size);
  return std::vector<float>(w + n * K + k0, w + n * K + k1);
}

int64_t block_of(const QuantScheme& s, int64_t K, int64_t n, int64_t k) {
  switch (s.granularity) {
    case Granularity::kPerTensor: return 0;
    case Granularity::kPerChannel: return n;
    case Granularity::kPerGroup: return n * ((K + s.group_size - 1) / s.group_size) + k / s.group_size;
  }
  return -1;
}

std::vector<QuantScheme> all_schemes(int64_t group_size) {
  std::vector<QuantScheme> schemes;
  for (int b = 2; b <= 8; ++b) {
    for (bool symmetric : {true, false}) {
      for (Granularity g : {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup}) {
        schemes.push_back({b, symmetric, g, group_size});
      }
    }
  }
  return schemes;
}

// The heart of it: for every scheme, scales match the closed form, codes lie in range, and every element comes back
// within half a step of its block's scale.
void check_round_trip(const Tensor& W, const QuantScheme& s) {
  SCOPED_TRACE(s.str() + " W " + W.shape_str());
  const int64_t N = W.size(0), K = W.size(1);
  const QuantizedWeight qw = quantize_weight(W, s);
  ASSERT_EQ(qw.qweight.dtype(), s.packed() || !s.symmetric ? DType::kU8 : DType::kI8);
  ASSERT_EQ(qw.qweight.shape(), (Shape{N, s.packed() ? (K + 1) / 2 : K}));
  const int64_t G = s.granularity == Granularity::kPerGroup ? (K + s.group_size - 1) / s.group_size : 1;
  const Shape sshape = s.granularity == Granularity::kPerTensor    ? Shape{1}
                       : s.granularity == Granularity::kPerChannel ? Shape{N}
                                                                   : Shape{N, G};
  ASSERT_EQ(qw.scales.shape(), sshape);
  ASSERT_EQ(qw.zeros.defined(), !s.symmetric);
  if (!s.symmetric) {
    ASSERT_EQ(qw.zeros.shape(), sshape);
  }

  const float* scales = qw.scales.data<float>();
  for (int64_t n = 0; n < (s.granularity == Granularity::kPerTensor ? 1 : N); ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const Expected e = expected_params(s, block_values(W, s, n, g), 1.0);
      const int64_t b = s.granularity == Granularity::kPerTensor ? 0 : n * G + g;
      EXPECT_NEAR(scales[b], e.scale, 1e-6 * e.scale) << "block " << n << "," << g;
      if (!s.symmetric) {
        EXPECT_EQ(qw.zeros.data<uint8_t>()[b], e.zero) << "block " << n << "," << g;
      }
    }
  }
  const Tensor deq = dequantize(qw);
  ASSERT_EQ(deq.shape(), W.shape());
  const float* w = W.data<float>();
  const float* d = deq.data<float>();
  int64_t misses = 0;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      const int32_t q = qw.code(n, k);
      ASSERT_GE(q, s.qmin());
      ASSERT_LE(q, s.qmax());
      const double step = scales[block_of(s, K, n, k)];
      const double err = std::fabs(double{w[n * K + k]} - d[n * K + k]);
      if (err > step / 2 * (1 + 1e-5) && misses++ < 5) {
        ADD_FAILURE() << "W[" << n << "][" << k << "] = " << w[n * K + k] << " came back " << d[n * K + k]
                      << ", error " << err << " > s/2 = " << step / 2;
      }
    }
  }
}

TEST(WeightQuant, RoundTripWithinHalfAStepForEveryScheme) {
  const Tensor W = random_tensor({9, 300}, -0.2f, 0.35f, 1);  // K not a multiple of the group size
  for (const QuantScheme& s : all_schemes(128)) check_round_trip(W, s);
}

TEST(WeightQuant, RoundTripOddKAndSmallGroups) {
  const Tensor W = random_tensor({5, 37}, -3.0f, 1.0f, 2);  // odd K: a half-used last byte when packed
  for (const QuantScheme& s : all_schemes(8)) check_round_trip(W, s);
  const Tensor positive = random_tensor({4, 33}, 0.5f, 2.0f, 3);  // asymmetric range widened to include 0
  for (const QuantScheme& s : all_schemes(16)) check_round_trip(positive, s);
}

TEST(WeightQuant, PackedNibbleOrderAndSignedCodes) {
  // Symmetric int4 per tensor, max|w| = 7 -> s = 1, codes = the values. Byte j = code[2j] | code[2j+1] << 4,
  // two's complement nibbles; odd K leaves the last high nibble 0.
  const Tensor W = Tensor::from_vector<float>({7, -1, 3, -7, 0}, {1, 5});
  const QuantizedWeight qw = quantize_weight(W, {4, true, Granularity::kPerTensor, 128});
  ASSERT_EQ(qw.qweight.shape(), (Shape{1, 3}));
  const uint8_t* bytes = qw.qweight.data<uint8_t>();
  EXPECT_EQ(bytes[0], 0xF7);  // 7 low, -1 (0xF) high
  EXPECT_EQ(bytes[1], 0x93);  // 3 low, -7 (0x9) high
  EXPECT_EQ(bytes[2], 0x00);  // 0 low, padding high
  EXPECT_EQ(qw.scales.data<float>()[0], 1.0f);
  EXPECT_EQ(dequantize(qw).to_float_vector(), W.to_float_vector());
  const Tensor codes = int8_codes(qw);
  EXPECT_EQ(codes.dtype(), DType::kI8);
  EXPECT_EQ(codes.to_float_vector(), W.to_float_vector());

  // Asymmetric 2-bit: w in [0, 3] -> s = 1, z = 0, codes 0..3, unsigned nibbles.
  const QuantizedWeight a = quantize_weight(Tensor::from_vector<float>({0, 1, 2, 3}, {1, 4}),
                                            {2, false, Granularity::kPerChannel, 128});
  EXPECT_EQ(a.qweight.data<uint8_t>()[0], 0x10);
  EXPECT_EQ(a.qweight.data<uint8_t>()[1], 0x32);
  EXPECT_EQ(a.zeros.data<uint8_t>()[0], 0);
}

TEST(WeightQuant, Int8SymmetricIsExactOnTheGrid) {
  // Rows of multiples of a step: per-channel int8 reproduces them exactly and never uses -128.
  std::vector<float> values;
  for (int n = 0; n < 3; ++n) {
    for (int k = -127; k <= 127; ++k) values.push_back(static_cast<float>(k) * 0.0625f * (n + 1));
  }
  const Tensor W = Tensor::from_vector(values, {3, 255});
  const QuantizedWeight qw = quantize_weight(W, int8_per_channel());
  EXPECT_EQ(qw.qweight.dtype(), DType::kI8);
  EXPECT_EQ(dequantize(qw).to_float_vector(), values);
  const int8_t* q = qw.qweight.data<int8_t>();
  EXPECT_EQ(*std::min_element(q, q + qw.qweight.numel()), -127);
}

TEST(WeightQuant, ZeroRowsAndZeroStayExact) {
  std::vector<float> values(4 * 10, 0.0f);
  for (int k = 0; k < 10; ++k) values[2 * 10 + k] = 0.1f * (k - 3);  // row 2 non-zero, with an exact 0 at k = 3
  const Tensor W = Tensor::from_vector(values, {4, 10});
  for (const QuantScheme& s : all_schemes(4)) {
    SCOPED_TRACE(s.str());
    const QuantizedWeight qw = quantize_weight(W, s);
    const std::vector<float> deq = dequantize(qw).to_float_vector();
    for (int64_t i = 0; i < 40; ++i) {
      if (values[i] == 0.0f) {
        EXPECT_EQ(deq[i], 0.0f) << "element " << i;
      }
    }
    if (s.granularity == Granularity::kPerChannel) {  // empty range
      EXPECT_EQ(qw.scales.data<float>()[0], 1.0f);
    }
  }
  check_round_trip(W, {4, false, Granularity::kPerGroup, 3});
}

TEST(WeightQuant, PerRowClipping) {
  const Tensor W = random_tensor({3, 64}, -1.0f, 1.0f, 7);
  const std::vector<float> clip = {1.0f, 0.5f, 0.8f};
  for (bool symmetric : {true, false}) {
    const QuantScheme s{4, symmetric, Granularity::kPerGroup, 32};
    SCOPED_TRACE(s.str());
    const QuantizedWeight qw = quantize_weight(W, s, clip);
    const Tensor deq = dequantize(qw);
    for (int64_t n = 0; n < 3; ++n) {
      for (int64_t g = 0; g < 2; ++g) {
        const std::vector<float> block = block_values(W, s, n, g);
        const Expected e = expected_params(s, block, clip[n]);
        const float scale = qw.scales.data<float>()[n * 2 + g];
        EXPECT_NEAR(scale, e.scale, 1e-6 * e.scale);
        // Inside the clipped range: within s/2. Outside: saturated at the end code, never beyond the range.
        const double lo = symmetric ? -s.qmax() * e.scale : (s.qmin() - e.zero) * e.scale;
        const double hi = symmetric ? s.qmax() * e.scale : (s.qmax() - e.zero) * e.scale;
        for (int64_t k = 0; k < 32; ++k) {
          const double w = block[k], d = deq.at({n, g * 32 + k});
          if (w >= lo && w <= hi) {
            EXPECT_LE(std::fabs(w - d), scale / 2 * (1 + 1e-5)) << n << "," << g * 32 + k;
          } else {
            EXPECT_NEAR(d, w > hi ? hi : lo, 1e-6) << "clipped " << w;
          }
        }
      }
    }
  }
}

TEST(WeightQuant, FakeQuantizeIsDequantizeOfQuantize) {
  const Tensor W = random_tensor({6, 50}, 11);
  const QuantScheme s{3, false, Granularity::kPerGroup, 16};
  EXPECT_EQ(fake_quantize_weight(W, s).to_float_vector(), dequantize(quantize_weight(W, s)).to_float_vector());
  // A non-contiguous input quantizes as its contiguous copy.
  const Tensor Wt = random_tensor({50, 6}, 12).transpose(0, 1);
  EXPECT_EQ(fake_quantize_weight(Wt, s).to_float_vector(), fake_quantize_weight(Wt.contiguous(), s).to_float_vector());
}

TEST(WeightQuant, RejectsBadArguments) {
  const Tensor W = random_tensor({2, 8}, 1);
  EXPECT_THROW(quantize_weight(W, {9, true, Granularity::kPerChannel, 128}), Error);
  EXPECT_THROW(quantize_weight(W, int8_per_channel(), {0.0f}), Error);
  EXPECT_THROW(quantize_weight(W, int8_per_channel(), {1.5f}), Error);
  EXPECT_THROW(quantize_weight(W, int8_per_channel(), {1.0f, 1.0f, 1.0f}), Error);
  EXPECT_THROW(quantize_weight(W, {8, true, Granularity::kPerTensor, 128}, {1.0f, 0.5f}), Error);
  EXPECT_THROW(quantize_weight(random_tensor({8}, 1), int8_per_channel()), Error);
  EXPECT_THROW(quantize_weight(Tensor::from_vector<float>({1, NAN}, {1, 2}), int8_per_channel()), Error);
  EXPECT_THROW(int8_codes(quantize_weight(W, int4_per_group(4, /*symmetric=*/false))), Error);
}

}  // namespace
}  // namespace bertforge::quant
