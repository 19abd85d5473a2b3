// quant/quantized_linear.h — a Linear executed in integers: y = x W^T + b with W as int8 codes and x quantized to
// uint8 on the fly, for inference of PTQ W8A8 models (quant/ptq.h), on the CPU or a GPU.
//
//   q_x (M,K) uint8 = clamp(round(x / s_a) + z_a, 0, 2^b - 1)        quantize_activations, one pass over x
//   y   (M,N) f32   = s_a s_w[n] (q_x W_q^T - z_a rowsum(W_q)[n]) + b[n]   int8_gemm_f32: exact int32 sums, fused
//                                                                      dequantizing epilogue (quant/int8_gemm.h)
// which is, up to float rounding order, the fake-quantized Linear: FP x_fq W_deq^T + b with x_fq = (q_x - z_a) s_a
// and W_deq = s_w W_q (quant/activation_quant.h, quant/weight_quant.h).
//
// The input's parameters (s_a, z_a) are either
//   per tensor (create): static, from the input's calibrated range at b <= 8 bits, with z_a in [0, 2^b - 1] (the
//             range contains 0, as every BERT Linear input's does); or
//   per token (create_per_token): dynamic, each row m of x gets its own (s_a[m], z_a[m]) from its min and max at
//             run time (quantize_activations_per_row), and the epilogue uses them row by row; the FP reference is
//             then linear(fake_quantize_per_token(x, b), W_deq, bias).
// What it takes besides: a weight quantized symmetric, per tensor or per output channel, with at most 8 bits (its
// codes lie in [-127, 127]); the bias (N) in FP. Activations of at most 7 bits take the faster AVX2 kernel. Other
// weight schemes (per_group, asymmetric) and activations of more than 8 bits are refused with the reason.
//
// Linears that read one input (a layer's query, key and value) can share its quantization (share_input): within a
// round of calls, the first quantizes x and keeps the codes, the next ones on the same tensor (same storage, first
// element, shape and strides, CPU) reuse them instead of quantizing x again; the round ends after one call per
// sharer. The caller promises that x is not modified in place within a round (the model calls the three in a row).
//
// The weight is packed once, for the fastest int8 GEMM path of this CPU (or a chosen one). Inference only: forward
// throws with grad mode on (no gradient flows through integer codes). Install it on a models/ Linear with
// Linear::set_forward_override(as_forward_override(...)).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "models/layers.h"
#include "quant/activation_quant.h"
#include "quant/int8_gemm.h"
#include "quant/weight_quant.h"

namespace bertforge::quant {

class QuantizedLinear {
 public:
  // Ok, or InvalidArgument saying why the scheme has no int8 execution.
  static absl::Status check_weight_scheme(const QuantScheme& scheme);

  enum class InputQuantization : uint8_t { kPerTensor, kPerToken };

  // weight: the codes of W (N,K); bias: F32 (N) or undefined (no bias); input: the parameters of x's range.
  static absl::StatusOr<QuantizedLinear> create(const QuantizedWeight& weight, const Tensor& bias,
                                                const ActivationQuantParams& input,
                                                Int8GemmIsa isa = int8_gemm_best_isa());
  // The same with dynamic per-token input parameters of `bits` bits (2..8).
  static absl::StatusOr<QuantizedLinear> create_per_token(const QuantizedWeight& weight, const Tensor& bias,
                                                          int bits, Int8GemmIsa isa = int8_gemm_best_isa());

  // x F32 (..., K), any strides -> F32 (..., N) on x's device. Grad mode must be off. On the CPU: the prepacked
  // int8 GEMM; on a GPU: the kernels quantize_u8 (per token: quantize_u8_per_row) and int8_linear
  // (cuda/int8_linear.cu), with the weight copied to that device at the first call.
  Tensor forward(const Tensor& x) const;

  int64_t in_features() const { return packed_.cols; }
  int64_t out_features() const { return packed_.rows; }
  Int8GemmIsa isa() const { return packed_.isa; }
  InputQuantization input_quantization() const { return input_quantization_; }
  int input_bits() const { return input_.bits; }
  // The static parameters of the input; per tensor only (throws per token).
  const ActivationQuantParams& input_params() const;

  // Makes these Linears (at least 2, the same input quantization: mode, bits and per tensor the parameters, and
  // the same in_features) share the quantization of an input they read in turn (file comment). InvalidArgument
  // when they differ.
  static absl::Status share_input(const std::vector<QuantizedLinear*>& linears);

 private:
  struct SharedInput;  // the codes of the round's input, shared by the sharers (quantized_linear.cpp)

  // The weight on a GPU: codes I8 (N,K) row-major, row sums I32 (N), scales F32 (1 or N), bias F32 (N) or undefined.
  struct DeviceWeight {
    Device device;
    Tensor codes, row_sums, scales, bias;
  };

  QuantizedLinear() = default;
  // The weight and bias checked and packed; the input's parameters are left to the callers.
  static absl::StatusOr<QuantizedLinear> make(const QuantizedWeight& weight, const Tensor& bias, int bits,
                                              Int8GemmIsa isa);
  Tensor forward_on_device(const Tensor& x) const;

  PackedInt8Weight packed_;
  Tensor codes_;                 // I8 (N,K) on the CPU, for the copy to a GPU
  std::vector<float> w_scales_;  // 1 (per tensor) or N (per channel)
  std::vector<float> bias_;      // N, or empty
  InputQuantization input_quantization_ = InputQuantization::kPerTensor;
  ActivationQuantParams input_;  // per token: only bits is used
  mutable std::shared_ptr<DeviceWeight> device_weight_;  // made by the first forward on a GPU
  std::shared_ptr<SharedInput> shared_input_;            // set by share_input, else null
};

// The override for Linear::set_forward_override; it owns the QuantizedLinear.
Linear::ForwardOverride as_forward_override(QuantizedLinear linear);

}  // namespace bertforge::quant
