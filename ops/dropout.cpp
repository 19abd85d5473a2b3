// Dropout and head dropout: the CPU kernels, then the ops, forward and backward side by side. The backward
// captures only (p, key, sizes): it redraws the mask from the key. The CUDA kernels are in cuda/dropout.cu.
//
// Both masks are pure functions of the Philox stream (seed, offset), so the
// backward pass regenerates the forward mask instead of reading a stored one:
// dropout is linear in x, and its backward is the same map applied to dout.
#include "ops/dropout.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/node.h"
#include "core/philox.h"
#include "ops/cpu/philox_words.h"
#include "ops/head_dropout_mask.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge::cpu {

namespace {

constexpr int64_t kChunk = 2048;                 // elements per task; a multiple of 4 (one Philox block)

inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// out (n) = keep_i ? x_i / (1 - p) : 0, keep_i = philox_uniform(seed, offset, i) >= p. out may alias x.
//
// The comparison is done on integers: philox_uniform is (word >> 8) * 2^-24, so
// u >= p exactly when (word >> 8) >= ceil(p * 2^24). Integer masks also keep the
// loops vectorisable (GCC will not if-convert float selects under -ftrapping-math).
void dropout_apply(float* out, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) {
  if (p >= 1.0f) {  // nothing is kept (and 1 / (1 - p) would be inf)
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = 0.0f;
    return;
  }
  const float keep_scale = 1.0f / (1.0f - p);
  // p * 2^24 is exact in float, so this threshold reproduces u >= p exactly.
  const uint32_t threshold = p > 0.0f ? static_cast<uint32_t>(std::ceil(p * 16777216.0f)) : 0u;
  const int64_t num_chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t chunk = 0; chunk < num_chunks; ++chunk) {
    const int64_t begin = chunk * kChunk, count = std::min(kChunk, n - begin);
    // The chunk's stream elements (one Philox block gives four), then all-ones bits for a kept element and zero for
    // a dropped one: masking the bits rather than multiplying by 0 sends a dropped inf or NaN to 0.
    alignas(64) uint32_t words[kChunk];
    philox_words(seed, offset, static_cast<uint64_t>(begin / 4), (count + 3) / 4, words);
    const float* x_chunk = x + begin;
    float* out_chunk = out + begin;
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) {
      const uint32_t keep_bits = (words[i] >> 8) >= threshold ? ~0u : 0u;
      out_chunk[i] = bits_to_float(float_to_bits(x_chunk[i] * keep_scale) & keep_bits);
    }
  }
}

// out (batch, heads, inner) = x scaled per (sample, head) by the head dropout mask. out may alias x.
void head_dropout_apply(float* out, const float* x, int64_t batch, int64_t heads, int64_t inner, float p,
                        uint64_t seed, uint64_t offset) {
  std::vector<HeadDropoutMask> masks(batch);
  for (int64_t b = 0; b < batch; ++b) {
    masks[b] = head_dropout_mask(seed, offset, static_cast<uint64_t>(b), static_cast<int>(heads), p);
  }
#pragma omp parallel for schedule(static) if (batch * heads * inner > kParallelThreshold)
  for (int64_t row = 0; row < batch * heads; ++row) {
    const HeadDropoutMask& mask = masks[row / heads];
    const float* x_row = x + row * inner;
    float* out_row = out + row * inner;
    if ((mask.keep_bits >> (row % heads)) & 1) {
      const float s = mask.scale;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) out_row[i] = x_row[i] * s;
    } else {
      std::memset(out_row, 0, static_cast<size_t>(inner) * sizeof(float));
    }
  }
}

}  // namespace

// out, x (n): element i is kept iff philox_uniform(seed, offset, i) >= p, kept elements scaled by 1 / (1 - p).
void dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_apply(out, x, n, p, seed, offset);
}
BF_REGISTER_KERNEL(DeviceType::kCPU, dropout_forward);

// dx, dout (n): the forward's mask, regenerated from (seed, offset), applied to dout.
void dropout_backward(float* dx, const float* dout, int64_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_apply(dx, dout, n, p, seed, offset);
}
BF_REGISTER_KERNEL(DeviceType::kCPU, dropout_backward);

// out, x (batch, heads, inner): one keep/drop per (sample, head), kept heads scaled by heads / kept; a sample with
// every head dropped is redrawn (ops/head_dropout_mask.h).
void head_dropout_forward(float* out, const float* x, int64_t batch, int64_t heads, int64_t inner, float p,
                          uint64_t seed, uint64_t offset) {
  head_dropout_apply(out, x, batch, heads, inner, p, seed, offset);
}
BF_REGISTER_KERNEL(DeviceType::kCPU, head_dropout_forward);

// dx, dout (batch, heads, inner): the forward's mask applied to dout.
void head_dropout_backward(float* dx, const float* dout, int64_t batch, int64_t heads, int64_t inner, float p,
                           uint64_t seed, uint64_t offset) {
  head_dropout_apply(dx, dout, batch, heads, inner, p, seed, offset);
}
BF_REGISTER_KERNEL(DeviceType::kCPU, head_dropout_backward);

}  // namespace bertforge::cpu

namespace bertforge {

DropoutKey dropout_key(uint64_t seed, uint64_t step, uint64_t rank, uint64_t tensor_id, uint64_t micro_step) {
  return DropoutKey{seed, philox_stream_offset(step, rank, tensor_id, micro_step)};
}

Tensor dropout(const Tensor& x, float p, const DropoutKey& key, bool training) {
  check_dtype("dropout", "x", x);
  BF_CHECK(p >= 0.0f && p <= 1.0f, "dropout: p must be in [0, 1], got ", p);
  if (!training || p == 0.0f) return x;
  const Tensor xc = x.contiguous();
  const int64_t n = x.numel();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), dropout_forward)(out.data<float>(), xc.data<float>(), n, p, key.seed, key.offset);
  return autograd::record("dropout", out, {x}, [n, p, key](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(dout.shape(), DType::kF32, dout.device());
    BF_KERNEL(dout.device(), dropout_backward)(dx.data<float>(), doutc.data<float>(), n, p, key.seed, key.offset);
    return std::vector<Tensor>{dx};
  });
}

Tensor head_dropout(const Tensor& x, float p, const DropoutKey& key, bool training) {
  check_dtype("head_dropout", "x", x);
  BF_CHECK(x.dim() >= 2, "head_dropout: x must be (B, H, ...), got ", x.shape_str());
  // p == 1 would drop every head of every sample, which the redraw rule forbids.
  BF_CHECK(p >= 0.0f && p < 1.0f, "head_dropout: p must be in [0, 1), got ", p);
  const int64_t batch = x.size(0), heads = x.size(1);
  BF_CHECK(heads <= kHeadDropoutMaxHeads, "head_dropout: at most ", kHeadDropoutMaxHeads, " heads, got ", heads,
           " in x ", x.shape_str());
  if (!training || p == 0.0f) return x;
  const int64_t inner = batch * heads == 0 ? 0 : x.numel() / (batch * heads);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::kF32, x.device());
  BF_KERNEL(x.device(), head_dropout_forward)(out.data<float>(), xc.data<float>(), batch, heads, inner, p, key.seed,
                                              key.offset);
  return autograd::record("head_dropout", out, {x}, [batch, heads, inner, p, key](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = Tensor::empty(dout.shape(), DType::kF32, dout.device());
    BF_KERNEL(dout.device(), head_dropout_backward)(dx.data<float>(), doutc.data<float>(), batch, heads, inner, p,
                                                    key.seed, key.offset);
    return std::vector<Tensor>{dx};
  });
}

}  // namespace bertforge
