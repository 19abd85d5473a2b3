// Every op BERT training runs, on a real GPU against the CPU at BERT-base sizes (the simulator
// tests cover awkward small sizes), forward and backward, and BERT training steps on the GPU
// against the CPU; the int8 Linear of quantized inference (per tensor and per token). Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "cuda/device.h"
#include "cuda/gemm.h"
#include "ops/activation.h"
#include "ops/adamw.h"
#include "ops/autocast.h"
#include "ops/cross_entropy.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/layernorm.h"
#include "ops/matmul.h"
#include "ops/shape.h"
#include "ops/softmax.h"
#include "quant/quantized_linear.h"
#include "tests/support/device_training_parity.h"
#include "tests/support/kernel_twins.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using test_support::random_tensor;

// The nvcc-compiled kernel sources registered themselves (bertforge_cuda linked whole), each with its CPU twin's
// type. Needs no GPU: registration happens when the program starts.
TEST(CudaKernelRegistry, EveryCpuKernelHasACudaTwinOfTheSameType) { test_support::expect_cuda_twins_of_cpu_kernels(); }

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    cuda::register_cuda_backend();
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  }
};

// |got - want| <= abs_tol + rel_tol * |want| element-wise; names the first misses.
void expect_close(const Tensor& got, const Tensor& want, double rel_tol, double abs_tol, const std::string& what) {
  const std::vector<float> g = got.to(Device::cpu()).to_float_vector(), w = want.to_float_vector();
  ASSERT_EQ(g.size(), w.size()) << what;
  int misses = 0;
  double worst = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double error = std::fabs(double{g[i]} - w[i]);
    worst = std::max(worst, error);
    if (!(error <= abs_tol + rel_tol * std::fabs(w[i])) && ++misses <= 3) {
      ADD_FAILURE() << what << "[" << i << "]: GPU " << g[i] << ", CPU " << w[i];
    }
  }
  EXPECT_EQ(misses, 0) << what << ": " << misses << " of " << w.size() << " differ (max error " << worst << ")";
}

// Runs `op` on the CPU inputs and on GPU copies of them; float inputs require grad. Compares the outputs, then
// the inputs' gradients for a random output cotangent.
void expect_op_matches_cpu(const std::string& name, const std::vector<Tensor>& cpu_inputs,
                           const std::function<Tensor(const std::vector<Tensor>&)>& op, double rel_tol,
                           double abs_tol) {
  std::vector<Tensor> on_cpu, on_gpu;
  for (const Tensor& input : cpu_inputs) {
    Tensor c = input.clone(), g = input.to(Device::cuda(0));
    if (input.dtype() == DType::kF32) {
      c.set_requires_grad(true);
      g.set_requires_grad(true);
    }
    on_cpu.push_back(c);
    on_gpu.push_back(g);
  }
  const Tensor y_cpu = op(on_cpu), y_gpu = op(on_gpu);
  ASSERT_EQ(y_gpu.device(), Device::cuda(0)) << name;
  expect_close(y_gpu, y_cpu, rel_tol, abs_tol, name + " forward");
  const Tensor cotangent = random_tensor(y_cpu.shape(), 99);
  autograd::backward(y_cpu, cotangent);
  autograd::backward(y_gpu, cotangent.to(Device::cuda(0)));
  for (size_t i = 0; i < on_cpu.size(); ++i) {
    if (!on_cpu[i].requires_grad()) continue;
    expect_close(on_gpu[i].grad(), on_cpu[i].grad(), rel_tol, abs_tol, name + " gradient of input " +
                                                                          std::to_string(i));
  }
}

// BERT-base sizes: 32 sequences of 128 tokens, hidden 768, 12 heads, FFN 3072, vocabulary 30522.
constexpr int64_t kTokens = 32 * 128, kHidden = 768, kFfn = 3072, kVocab = 30522;

TEST_F(CudaOps, ElementwiseActivationsAndLayerNorm) {
  // Transcendentals (erff, expf, tanhf) of the GPU's libdevice are within 2 ulp of glibc's.
  const Tensor x = random_tensor({kTokens, kFfn}, -4, 4, 1);
  expect_op_matches_cpu("gelu", {x}, [](const auto& in) { return gelu(in[0]); }, 1e-6, 1e-6);
  expect_op_matches_cpu("tanh", {x}, [](const auto& in) { return tanh(in[0]); }, 1e-6, 1e-6);
  expect_op_matches_cpu("sigmoid", {x}, [](const auto& in) { return sigmoid(in[0]); }, 1e-6, 1e-6);
  expect_op_matches_cpu("mul", {x, random_tensor({kTokens, kFfn}, 2)},
                        [](const auto& in) { return mul(in[0], in[1]); }, 0, 0);
  // The bias gradient sums 4096 rows in blocks that add with atomics: rounding of values up to ~40 (seen: 2.5e-4).
  expect_op_matches_cpu("add_bias", {x, random_tensor({kFfn}, 3)},
                        [](const auto& in) { return add_bias(in[0], in[1]); }, 1e-5, 1e-3);
  // LayerNorm: means and variances are block reductions over 768 values (other summation order).
  expect_op_matches_cpu("layer_norm", {random_tensor({kTokens, kHidden}, -3, 3, 4), random_tensor({kHidden}, 5),
                                       random_tensor({kHidden}, 6)},
                        [](const auto& in) { return layer_norm(in[0], in[1], in[2], 1e-12f); }, 1e-4, 1e-4);
}

TEST_F(CudaOps, AttentionSoftmaxesAndHeadSplits) {
  // Scores (B, H, T, T) with a padding mask (B, 1, 1, T); sums over 128 keys in another order than the CPU.
  const Tensor scores = random_tensor({32, 12, 128, 128}, -6, 6, 7);
  std::vector<float> mask_values(32 * 128, 0.0f);
  for (int64_t b = 0; b < 32; ++b) {
    for (int64_t t = 100 + b; t < 128; ++t) mask_values[b * 128 + t] = -1e30f;
  }
  // The mask is a constant of the op (no gradient), so it is not one of the compared inputs.
  const Tensor mask = Tensor::from_vector(mask_values, {32, 1, 1, 128});
  expect_op_matches_cpu("softmax", {scores},
                        [&](const auto& in) { return softmax(in[0], mask.to(in[0].device())); }, 1e-5, 1e-6);
  expect_op_matches_cpu(
      "clipped_softmax", {scores},
      [&](const auto& in) { return clipped_softmax(in[0], mask.to(in[0].device()), -0.03f, 1.0f); }, 1e-5, 1e-6);
  // (B, T, H, D) -> (B, H, T, D): a strided copy, exact.
  expect_op_matches_cpu("permute", {random_tensor({32, 128, 12, 64}, 8)},
                        [](const auto& in) { return contiguous(permute(in[0], {0, 2, 1, 3})); }, 0, 0);
}

TEST_F(CudaOps, GemmsInEachPrecision) {
  const Tensor a = random_tensor({kTokens, kHidden}, 9), w = random_tensor({kFfn, kHidden}, 10);
  // FP32: cuBLAS sums the products in another order. TF32 and BF16 round the inputs to 10 and 7 mantissa bits;
  // the backward GEMMs sum 3072 and 4096 products into values up to ~30. Seen on an H100: TF32 up to 0.029.
  // FP16 rounds to TF32's 10 mantissa bits (these inputs are far inside its range), so it gets TF32's
  // tolerance; it has not run on a GPU yet.
  const std::pair<cuda::GemmPrecision, double> precisions[] = {{cuda::GemmPrecision::kFp32, 1e-4},
                                                               {cuda::GemmPrecision::kTf32, 6e-2},
                                                               {cuda::GemmPrecision::kBf16, 1.5e-1},
                                                               {cuda::GemmPrecision::kFp16, 6e-2}};
  for (const auto& [precision, tolerance] : precisions) {
    cuda::set_gemm_precision(precision);
    expect_op_matches_cpu("linear " + cuda::gemm_precision_name(precision), {a, w},
                          [](const auto& in) { return linear(in[0], in[1]); }, 0, tolerance);
  }
  cuda::set_gemm_precision(cuda::GemmPrecision::kFp32);
}

// Mixed precision (ops/autocast.h): the GPU's cuBLAS 16-bit GEMMs and the CPU's widening kernel multiply the very
// same rounded operands into FP32 sums, so only the order of the sums differs: FP32's tolerance with a margin for
// the tensor cores' accumulation (not yet run on a GPU).
TEST_F(CudaOps, MixedPrecisionGemmsMatchTheCpu) {
  const Tensor a = random_tensor({kTokens, kHidden}, 11), w = random_tensor({kFfn, kHidden}, 12);
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    expect_op_matches_cpu(std::string("linear under ") + dtype_name(dtype) + " autocasting", {a, w},
                          [dtype](const auto& in) {
                            AutocastGuard guard(dtype);
                            return linear(in[0], in[1]);
                          },
                          0, 1e-3);
  }
}

TEST_F(CudaOps, EmbeddingCrossEntropyAndDropout) {
  std::vector<int64_t> ids(kTokens);
  for (int64_t i = 0; i < kTokens; ++i) ids[i] = (i * 7919) % kVocab;
  // Embedding gradients add repeated ids with atomics (any order): relative rounding.
  expect_op_matches_cpu("embedding", {Tensor::from_vector(ids, {kTokens}), random_tensor({kVocab, kHidden}, 11)},
                        [](const auto& in) { return embedding(in[0], in[1]); }, 1e-5, 1e-6);
  std::vector<int64_t> targets(640);
  for (int64_t i = 0; i < 640; ++i) targets[i] = i % 9 == 0 ? kIgnoreIndex : (i * 104729) % kVocab;
  // Log-sum-exp over 30522 logits: block reductions in another order.
  expect_op_matches_cpu("cross_entropy", {random_tensor({640, kVocab}, -8, 8, 12), Tensor::from_vector(targets, {640})},
                        [](const auto& in) { return cross_entropy(in[0], in[1]); }, 1e-5, 1e-7);
  // Dropout masks come from the same Philox stream: bit-identical.
  const DropoutKey key{1234, 5678};
  expect_op_matches_cpu("dropout", {random_tensor({kTokens, kHidden}, 13)},
                        [key](const auto& in) { return dropout(in[0], 0.1f, key, true); }, 0, 0);
  expect_op_matches_cpu("head_dropout", {random_tensor({32, 12, 128 * 64}, 14)},
                        [key](const auto& in) { return head_dropout(in[0], 0.2f, key, true); }, 0, 0);
}

TEST_F(CudaOps, DtypeConversionsRoundAsTheCpu) {
  const Tensor x = random_tensor({kTokens, kHidden}, -70000, 70000, 19);
  for (DType narrow : {DType::kBF16, DType::kF16}) {
    // Values beyond f16's 65504 become inf on both sides: the same rounding code (core/half.h).
    const std::vector<float> want = x.to(narrow).to(DType::kF32).to_float_vector();
    const Tensor on_gpu = x.to(Device::cuda(0)).to(narrow);
    EXPECT_EQ(on_gpu.to(Device::cpu()).to(DType::kF32).to_float_vector(), want) << dtype_name(narrow);
    EXPECT_EQ(on_gpu.to(DType::kF32).to(Device::cpu()).to_float_vector(), want) << dtype_name(narrow) << " -> f32";
  }
}

TEST_F(CudaOps, AdamWStep) {
  Tensor param_cpu = random_tensor({kFfn, kHidden}, 15), grad = random_tensor({kFfn, kHidden}, 16);
  Tensor m_cpu = random_tensor({kFfn, kHidden}, -0.1f, 0.1f, 17), v_cpu = random_tensor({kFfn, kHidden}, 0, 0.01f, 18);
  Tensor param_gpu = param_cpu.to(Device::cuda(0)), m_gpu = m_cpu.to(Device::cuda(0));
  Tensor v_gpu = v_cpu.to(Device::cuda(0));
  AdamWConfig config;
  config.lr = 1e-3f;
  config.weight_decay = 0.01f;
  adamw_step(param_cpu, grad, m_cpu, v_cpu, config, 3);
  adamw_step(param_gpu, grad.to(Device::cuda(0)), m_gpu, v_gpu, config, 3);
  // Same formula per element, but nvcc and g++ fuse multiply-adds differently: m = 0.9 m + 0.1 g adds terms of
  // ~0.1 (an ulp is ~7e-9) even where m is small, v = 0.999 v + 0.001 g^2 terms of ~0.01, param terms of ~1.
  expect_close(param_gpu, param_cpu, 1e-6, 2.5e-7, "param");
  expect_close(m_gpu, m_cpu, 1e-6, 2e-8, "m");
  expect_close(v_gpu, v_cpu, 1e-6, 4e-9, "v");
}

// An int8 Linear at BERT-base's FFN shape with static per-tensor and dynamic per-token inputs: quantize_u8 /
// quantize_u8_per_row and int8_linear on the GPU against quant/int8_gemm.h on the CPU. Same codes (and per-row
// parameters), exact int32 sums: only the float epilogue's rounding (a fused multiply-add on one side) differs,
// within 1e-6 of the largest output.
TEST_F(CudaOps, Int8LinearPerTensorAndPerTokenMatchTheCpu) {
  const Tensor w = random_tensor({kFfn, kHidden}, 21), bias = random_tensor({kFfn}, 22);
  Tensor x = random_tensor({32, 128, kHidden}, -2.0f, 3.0f, 23);
  for (int64_t t = 0; t < 32 * 128; t += 7) x.data<float>()[t * kHidden + t % kHidden] = 40.0f;  // outlier tokens
  autograd::NoGradGuard no_grad;
  const quant::QuantizedWeight qw = quant::quantize_weight(w, {8, true, quant::Granularity::kPerChannel, 128});
  for (bool per_token : {false, true}) {
    const absl::StatusOr<quant::QuantizedLinear> linear =
        per_token ? quant::QuantizedLinear::create_per_token(qw, bias, 8)
                  : quant::QuantizedLinear::create(qw, bias, ActivationQuantParams::from_range({-2.0f, 40.0f}, 8));
    ASSERT_TRUE(linear.ok()) << linear.status();
    const Tensor want = linear->forward(x);
    double largest = 0;
    for (float v : want.to_float_vector()) largest = std::max(largest, std::fabs(double{v}));
    expect_close(linear->forward(x.to(Device::cuda(0))), want, 0, 1e-6 * largest,
                 per_token ? "int8 Linear per token" : "int8 Linear per tensor");
  }
}

class CudaTraining : public ::testing::TestWithParam<AttentionVariant> {};

TEST_P(CudaTraining, StepsMatchTheCpu) {
  cuda::register_cuda_backend();
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  test_support::expect_training_matches_cpu(GetParam(), Device::cuda(0));
}

INSTANTIATE_TEST_SUITE_P(AttentionVariants, CudaTraining, test_support::kParityAttentionVariants,
                         test_support::parity_test_name);

TEST(CudaMixedPrecisionTraining, StepsMatchTheCpu) {
  cuda::register_cuda_backend();
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    test_support::expect_training_matches_cpu(AttentionVariant::kClippedSoftmax, Device::cuda(0), dtype);
  }
}

}  // namespace
}  // namespace bertforge
