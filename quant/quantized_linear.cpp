// quant/quantized_linear.cpp — int8 execution of a Linear: activation quantization (static per tensor or dynamic
// per token) + int8 GEMM with the fused dequantizing epilogue (see quantized_linear.h).
#include "quant/quantized_linear.h"

#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "core/check.h"
#include "ops/kernels.h"

namespace bertforge::quant {

// The GPU kernels of forward_on_device (cuda/int8_linear.cu; on the CPU, forward() runs quant/int8_gemm.h's
// prepacked kernels, which these match), looked up by name in the registry (ops/kernels.h) with these types:
// q (n) uint8 = clamp(round_half_even(x / scale) + zero_point, 0, q_max).
using QuantizeU8Kernel = void(uint8_t* q, const float* x, int64_t n, float scale, float zero_point, float q_max);
// Dynamic per-row quantization, as quant/int8_gemm.h quantize_activations_per_row: for each row m of x (M,K),
// (scales[m], zero_points[m]) = ActivationQuantParams::from_range({min(0, min_k x), max(0, max_k x)}, bits) and
// q[m,:] (M,K) its codes as quantize_u8 gives them; bits in [2, 8]. A NaN is left out of the range (code 0). A row
// holding an infinity cannot raise an error on a GPU: it gets scale NaN and zero point 0, so its outputs are NaN.
using QuantizeU8PerRowKernel = void(uint8_t* q, float* scales, int32_t* zero_points, const float* x, int64_t M,
                                    int64_t K, int bits);
// y (M,N) = s_a[m] * w_scales[n] * (sum_k a[m][k] w[n][k] - z_a[m] * w_row_sums[n]) + bias[n], the integer sum
// exact; a (M,K) uint8 and w (N,K) int8 in [-127, 127] row-major, w_row_sums (N) = sum_k w[n][k], w_scales (N,
// or 1: one scale for every n), bias (N) or nullptr. (s_a[m], z_a[m]) = (a_scales[m], a_zero_points[m]) (M) when
// these are given (per row), else (a_scale, a_zero_point) for every m.
using Int8LinearKernel = void(float* y, const uint8_t* a, const int8_t* w, const int32_t* w_row_sums,
                              const float* w_scales, int64_t num_w_scales, const float* bias, int64_t M, int64_t N,
                              int64_t K, float a_scale, int32_t a_zero_point, const float* a_scales,
                              const int32_t* a_zero_points);

absl::Status QuantizedLinear::check_weight_scheme(const QuantScheme& scheme) {
  if (!scheme.symmetric) {
    return absl::InvalidArgumentError(absl::StrCat("int8 execution needs symmetric weights (the GEMM has no weight "
                                                   "zero point), got ", scheme.str()));
  }
  if (scheme.granularity == Granularity::kPerGroup) {
    return absl::InvalidArgumentError(absl::StrCat("int8 execution needs per_tensor or per_channel weight scales "
                                                   "(one scale per output channel at most), got ", scheme.str()));
  }
  if (scheme.bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("int8 execution needs at most 8-bit weights, got ", scheme.str()));
  }
  return absl::OkStatus();
}

absl::StatusOr<QuantizedLinear> QuantizedLinear::make(const QuantizedWeight& weight, const Tensor& bias, int bits,
                                                      Int8GemmIsa isa) {
  BF_RETURN_IF_ERROR(check_weight_scheme(weight.scheme));
  if (bits < 1 || bits > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("int8 execution needs activations of at most 8 bits (uint8 codes), got ", bits, " bits"));
  }
  const int64_t N = weight.rows, K = weight.cols;
  if (bias.defined() && (bias.dtype() != DType::kF32 || bias.shape() != Shape{N})) {
    return absl::InvalidArgumentError(
        absl::StrCat("int8 Linear: bias must be F32 (", N, "), got ", dtype_name(bias.dtype()), " ", bias.shape_str()));
  }
  QuantizedLinear linear;
  linear.codes_ = int8_codes(weight).contiguous();  // I8 (N,K) in [-127, 127]
  linear.packed_ = pack_int8_weight(linear.codes_.data<int8_t>(), N, K, K, isa);
  const Tensor scales = weight.scales.contiguous();
  linear.w_scales_.assign(scales.data<float>(), scales.data<float>() + scales.numel());
  if (bias.defined()) {
    const Tensor b = bias.to(Device::cpu()).contiguous();
    linear.bias_.assign(b.data<float>(), b.data<float>() + N);
  }
  linear.input_.bits = bits;
  return linear;
}

absl::StatusOr<QuantizedLinear> QuantizedLinear::create(const QuantizedWeight& weight, const Tensor& bias,
                                                        const ActivationQuantParams& input, Int8GemmIsa isa) {
  BF_ASSIGN_OR_RETURN(QuantizedLinear linear, make(weight, bias, input.bits, isa));  // checks the bits first
  if (input.zero_point < 0 || input.zero_point > input.qmax()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int8 execution needs an activation zero point in [0, ", input.qmax(), "] (a calibrated range that contains "
        "0), got ", input.zero_point, " (scale ", input.scale, ")"));
  }
  linear.input_quantization_ = InputQuantization::kPerTensor;
  linear.input_ = input;
  return linear;
}

absl::StatusOr<QuantizedLinear> QuantizedLinear::create_per_token(const QuantizedWeight& weight, const Tensor& bias,
                                                                  int bits, Int8GemmIsa isa) {
  if (bits < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("int8 execution with per-token activations needs 2 to 8 bits, got ", bits, " bits"));
  }
  BF_ASSIGN_OR_RETURN(QuantizedLinear linear, make(weight, bias, bits, isa));
  linear.input_quantization_ = InputQuantization::kPerToken;
  return linear;
}

// The quantized input of a round (see share_input): codes (M,K), and per token their row parameters, of the tensor
// identified by the key; `uses_left` more sharers may take them.
struct QuantizedLinear::SharedInput {
  struct Codes {
    std::vector<uint8_t> codes;
    std::vector<float> row_scales;
    std::vector<int32_t> row_zero_points;
  };
  int64_t sharers = 0;
  std::mutex mutex;
  // The key: x's storage (alive and the same object), first element, shape and strides.
  std::weak_ptr<Storage> storage;
  const void* data = nullptr;
  Shape shape, strides;
  int64_t uses_left = 0;
  std::shared_ptr<Codes> codes;  // reused in place when no reader holds it

  bool matches(const Tensor& x) {
    const std::shared_ptr<Storage> alive = storage.lock();
    return uses_left > 0 && alive != nullptr && alive == x.storage() && data == x.raw_data() && shape == x.shape() &&
           strides == x.strides();
  }
};

absl::Status QuantizedLinear::share_input(const std::vector<QuantizedLinear*>& linears) {
  if (linears.size() < 2) return absl::InvalidArgumentError("share_input: needs at least 2 int8 Linears");
  const QuantizedLinear& first = *linears.front();
  for (const QuantizedLinear* l : linears) {
    const bool same = l->input_quantization_ == first.input_quantization_ && l->input_.bits == first.input_.bits &&
                      l->in_features() == first.in_features() &&
                      (l->input_quantization_ == InputQuantization::kPerToken ||
                       (l->input_.scale == first.input_.scale && l->input_.zero_point == first.input_.zero_point));
    if (!same) {
      return absl::InvalidArgumentError(absl::StrCat("share_input: int8 Linears (", first.in_features(), " -> ",
                                                     first.out_features(), ") and (", l->in_features(), " -> ",
                                                     l->out_features(), ") quantize their input differently"));
    }
  }
  auto shared = std::make_shared<SharedInput>();
  shared->sharers = static_cast<int64_t>(linears.size());
  for (QuantizedLinear* l : linears) l->shared_input_ = shared;
  return absl::OkStatus();
}

const ActivationQuantParams& QuantizedLinear::input_params() const {
  BF_CHECK(input_quantization_ == InputQuantization::kPerTensor, "int8 Linear (", in_features(), " -> ",
           out_features(), ") quantizes its input per token: it has no static input parameters");
  return input_;
}

Tensor QuantizedLinear::forward(const Tensor& x) const {
  BF_CHECK(!autograd::GradMode::is_enabled(), "int8 Linear (", in_features(), " -> ", out_features(),
           ") is for inference: turn grad mode off (autograd::NoGradGuard)");
  const int64_t K = in_features(), N = out_features();
  BF_CHECK(x.dtype() == DType::kF32 && x.dim() >= 1 && x.size(-1) == K, "int8 Linear: x must be F32 (..., ", K,
           "), got ", dtype_name(x.dtype()), " ", x.shape_str());
  if (!x.device().is_cpu()) return forward_on_device(x);
  const Tensor xc = x.contiguous();
  const int64_t M = xc.numel() / K;
  const bool per_token = input_quantization_ == InputQuantization::kPerToken;
  // The codes of x (and per token their parameters): this round's shared ones, or quantized now into a buffer
  // reused across calls (per thread, or the sharers' when no other reader holds it).
  thread_local auto own = std::make_shared<SharedInput::Codes>();
  std::shared_ptr<SharedInput::Codes> codes;
  bool quantize = true;
  if (shared_input_ != nullptr) {
    SharedInput& share = *shared_input_;
    std::lock_guard<std::mutex> lock(share.mutex);
    if (share.matches(xc)) {
      --share.uses_left;
      codes = share.codes;
      quantize = false;
    } else {
      if (share.codes == nullptr || share.codes.use_count() > 1) share.codes = std::make_shared<SharedInput::Codes>();
      codes = share.codes;
      share.storage = xc.storage();
      share.data = xc.raw_data();
      share.shape = xc.shape();
      share.strides = xc.strides();
      share.uses_left = 0;  // set once the codes are written (below)
    }
  } else {
    codes = own;
  }
  if (quantize) {
    if (static_cast<int64_t>(codes->codes.size()) < M * K) codes->codes.resize(static_cast<size_t>(M * K));
    if (per_token && static_cast<int64_t>(codes->row_scales.size()) < M) {
      codes->row_scales.resize(static_cast<size_t>(M));
      codes->row_zero_points.resize(static_cast<size_t>(M));
    }
    if (per_token) {
      quantize_activations_per_row(xc.data<float>(), M, K, K, input_.bits, codes->codes.data(), K,
                                   codes->row_scales.data(), codes->row_zero_points.data());
    } else {
      quantize_activations(xc.data<float>(), M, K, K, input_.scale, input_.zero_point, codes->codes.data(), K,
                           input_.bits);
    }
    if (shared_input_ != nullptr) {
      std::lock_guard<std::mutex> lock(shared_input_->mutex);
      if (shared_input_->codes == codes) shared_input_->uses_left = shared_input_->sharers - 1;
    }
  }
  Int8Epilogue epilogue;
  if (per_token) {
    epilogue.a_scales = codes->row_scales.data();
    epilogue.a_zero_points = codes->row_zero_points.data();
  } else {
    epilogue.a_scale = input_.scale;
    epilogue.a_zero_point = input_.zero_point;
  }

  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape);
  epilogue.a_bits = input_.bits;
  epilogue.w_scales = w_scales_.data();
  epilogue.num_w_scales = static_cast<int64_t>(w_scales_.size());
  epilogue.bias = bias_.empty() ? nullptr : bias_.data();
  int8_gemm_f32(M, codes->codes.data(), K, packed_, epilogue, y.data<float>(), N);
  return y;
}

Tensor QuantizedLinear::forward_on_device(const Tensor& x) const {
  const Device device = x.device();
  if (device_weight_ == nullptr || device_weight_->device != device) {
    auto weight = std::make_shared<DeviceWeight>();
    weight->device = device;
    weight->codes = codes_.to(device);
    weight->row_sums = Tensor::from_vector(packed_.row_sums, {out_features()}).to(device);
    weight->scales = Tensor::from_vector(w_scales_, {static_cast<int64_t>(w_scales_.size())}).to(device);
    if (!bias_.empty()) weight->bias = Tensor::from_vector(bias_, {out_features()}).to(device);
    device_weight_ = std::move(weight);
  }
  const DeviceWeight& w = *device_weight_;
  const int64_t K = in_features(), N = out_features();
  const Tensor xc = x.contiguous();
  const int64_t M = xc.numel() / K;
  Tensor codes = Tensor::empty({M, K}, DType::kU8, device);
  const bool per_token = input_quantization_ == InputQuantization::kPerToken;
  Tensor row_scales, row_zero_points;  // per token: F32 (M), I32 (M) on the device
  if (per_token) {
    row_scales = Tensor::empty({M}, DType::kF32, device);
    row_zero_points = Tensor::empty({M}, DType::kI32, device);
    kernel<QuantizeU8PerRowKernel>(device, "quantize_u8_per_row")(codes.data<uint8_t>(), row_scales.data<float>(),
                                           row_zero_points.data<int32_t>(), xc.data<float>(), M, K, input_.bits);
  } else {
    kernel<QuantizeU8Kernel>(device, "quantize_u8")(codes.data<uint8_t>(), xc.data<float>(), M * K, input_.scale,
                                   static_cast<float>(input_.zero_point), static_cast<float>(input_.qmax()));
  }
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape, DType::kF32, device);
  kernel<Int8LinearKernel>(device, "int8_linear")(y.data<float>(), codes.data<uint8_t>(), w.codes.data<int8_t>(),
                                 w.row_sums.data<int32_t>(), w.scales.data<float>(), w.scales.numel(),
                                 w.bias.defined() ? w.bias.data<float>() : nullptr, M, N, K, input_.scale,
                                 input_.zero_point, per_token ? row_scales.data<float>() : nullptr,
                                 per_token ? row_zero_points.data<int32_t>() : nullptr);
  return y;
}

Linear::ForwardOverride as_forward_override(QuantizedLinear linear) {
  auto shared = std::make_shared<const QuantizedLinear>(std::move(linear));
  return [shared](const Tensor& x) { return shared->forward(x); };
}

}  // namespace bertforge::quant
