// Int8 execution of Linears (quant/quantized_linear.h) and of whole PTQ W8A8 models (quant/quantized_model.h,
// QuantizedExecution::kInt8):
//   - a QuantizedLinear equals the fake-quantized FP Linear (x fake-quantized, W dequantized, FP32 GEMM) up to float
//     rounding order, for per-tensor, per-channel and 4-bit weights, 8-, 7- and 6-bit activations, on every int8
//     GEMM path of this CPU
//   - with per-token inputs it equals linear(fake_quantize_per_token(x), W dequantized) + b within 1e-5 of the
//     largest output (exact int32 sums; only the float rounding order differs), on every int8 GEMM path, and on
//     rows of very different magnitudes it is closer to the FP Linear than per-tensor quantization
//   - unsupported schemes (per_group, asymmetric weights, activations wider than 8 bits, a range without 0) and
//     grad mode are refused with the reason
//   - a PTQ W8A8 2-layer model: int8 logits agree with the fake-quant model's within 2e-4 relative to the logits'
//     scale and the perplexities within 1e-4 relative (bounds); measured here: bit-identical logits and perplexity
//     (53.807147 per tensor, 53.641651 per channel), also with the Linear outputs left FP, since the fake-quant tap
//     points after each residual add snap the last-ulp differences of the Linears back onto the same grid points
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "ops/matmul.h"
#include "quant/ptq.h"
#include "quant/quantized_linear.h"
#include "quant/quantized_model.h"
#include "tests/support/test_support.h"
#include "train/evaluation.h"
#include "train/token_shard.h"

namespace bertforge::quant {
namespace {

using namespace test_support;

std::vector<float> values(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

// max |a - b| / max |b|.
double relative_max_error(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return err / scale;
}

QuantScheme scheme(int bits, Granularity granularity, bool symmetric = true) {
  return {bits, symmetric, granularity, 16};
}

// ---- One Linear -----------------------------------------------------------------------------------------------

TEST(QuantizedLinear, EqualsTheFakeQuantizedLinearOnEveryPath) {
  constexpr int64_t N = 37, K = 70;
  const Tensor W = random_tensor({N, K}, 11);
  const Tensor bias = random_tensor({N}, 12);
  const Tensor x = random_tensor({3, 5, K}, -2.0f, 3.0f, 13);
  autograd::NoGradGuard no_grad;
  // 8-bit activations, and 7 and 6 bits (the AVX2 path's faster kernel).
  for (int activation_bits : {8, 7, 6}) {
    const ActivationQuantParams input = ActivationQuantParams::from_range({-2.0f, 3.0f}, activation_bits);
    for (const QuantScheme& s : {scheme(8, Granularity::kPerTensor), scheme(8, Granularity::kPerChannel),
                                 scheme(4, Granularity::kPerChannel)}) {
      const QuantizedWeight qw = quantize_weight(W, s);
      const std::vector<float> want = values(linear(fake_quantize_activation(x, input), dequantize(qw), bias));
      for (Int8GemmIsa isa : int8_gemm_available_isas()) {
        absl::StatusOr<QuantizedLinear> q = QuantizedLinear::create(qw, bias, input, isa);
        ASSERT_TRUE(q.ok()) << q.status();
        const Tensor y = q->forward(x);
        EXPECT_EQ(y.shape(), (Shape{3, 5, N}));
        // Exact int32 sums vs an FP32 GEMM of K = 70 products: a few ulps of the largest output.
        EXPECT_LT(relative_max_error(values(y), want), 1e-5)
            << s.str() << " A" << activation_bits << " " << int8_gemm_isa_name(isa);
      }
    }
  }
}

// Per-token inputs: each row of x quantized with its own range. The rows span four orders of magnitude (one row
// holds an outlier, one is all zero), so one per-tensor range would flatten the small rows.
TEST(QuantizedLinear, PerTokenEqualsTheFakeQuantizedLinearOnEveryPath) {
  constexpr int64_t N = 37, K = 70;
  const Tensor W = random_tensor({N, K}, 21);
  const Tensor bias = random_tensor({N}, 22);
  std::vector<float> xv = random_values(4 * 5 * K, -2.0f, 3.0f, 23);
  for (int64_t r = 0; r < 20; ++r) {
    for (int64_t k = 0; k < K; ++k) xv[r * K + k] *= std::pow(10.0f, static_cast<float>(r % 5) - 2.0f);
  }
  std::fill(xv.begin() + 3 * K, xv.begin() + 4 * K, 0.0f);  // an all-zero token
  xv[6 * K + 5] = 500.0f;                                    // an outlier
  const Tensor x = Tensor::from_vector(xv, {4, 5, K});
  autograd::NoGradGuard no_grad;
  for (int activation_bits : {8, 7, 4}) {
    for (const QuantScheme& s : {scheme(8, Granularity::kPerTensor), scheme(8, Granularity::kPerChannel),
                                 scheme(4, Granularity::kPerChannel)}) {
      const QuantizedWeight qw = quantize_weight(W, s);
      const std::vector<float> want =
          values(linear(fake_quantize_per_token(x, activation_bits), dequantize(qw), bias));
      for (Int8GemmIsa isa : int8_gemm_available_isas()) {
        absl::StatusOr<QuantizedLinear> q = QuantizedLinear::create_per_token(qw, bias, activation_bits, isa);
        ASSERT_TRUE(q.ok()) << q.status();
        EXPECT_EQ(q->input_quantization(), QuantizedLinear::InputQuantization::kPerToken);
        EXPECT_EQ(q->input_bits(), activation_bits);
        const Tensor y = q->forward(x);
        EXPECT_EQ(y.shape(), (Shape{4, 5, N}));
        // Exact int32 sums vs an FP32 GEMM of K = 70 products: a few ulps of the largest output.
        EXPECT_LT(relative_max_error(values(y), want), 1e-5)
            << s.str() << " A" << activation_bits << " " << int8_gemm_isa_name(isa);
        // Row by row too: the small rows must not hide behind the outlier's magnitude.
        const std::vector<float> got = values(y);
        for (int64_t r = 0; r < 20; ++r) {
          const std::vector<float> g(got.begin() + r * N, got.begin() + (r + 1) * N);
          const std::vector<float> w(want.begin() + r * N, want.begin() + (r + 1) * N);
          EXPECT_LT(relative_max_error(g, w), 1e-5) << "row " << r << " " << int8_gemm_isa_name(isa);
        }
      }
    }
  }
  // Against the FP Linear (no bias, so each row's output scales with the row), per token keeps every row's relative
  // error small; one per-tensor range flattens the small rows (relative error near 1). Mean over the rows other
  // than the zero one and the outlier's.
  const QuantizedWeight qw = quantize_weight(W, scheme(8, Granularity::kPerChannel));
  const std::vector<float> fp = values(linear(x, dequantize(qw), Tensor()));
  float lo = 0, hi = 0;
  for (float v : xv) lo = std::min(lo, v), hi = std::max(hi, v);
  absl::StatusOr<QuantizedLinear> per_token = QuantizedLinear::create_per_token(qw, Tensor(), 8);
  absl::StatusOr<QuantizedLinear> per_tensor =
      QuantizedLinear::create(qw, Tensor(), ActivationQuantParams::from_range({lo, hi}, 8));
  ASSERT_TRUE(per_token.ok() && per_tensor.ok());
  const std::vector<float> y_token = values(per_token->forward(x)), y_tensor = values(per_tensor->forward(x));
  double token_error = 0, tensor_error = 0;
  for (int64_t r = 0; r < 20; ++r) {
    if (r == 3 || r == 6) continue;
    double token = 0, tensor = 0, norm = 0;
    for (int64_t n = r * N; n < (r + 1) * N; ++n) {
      token += std::pow(double{y_token[n]} - fp[n], 2);
      tensor += std::pow(double{y_tensor[n]} - fp[n], 2);
      norm += std::pow(double{fp[n]}, 2);
    }
    token_error += std::sqrt(token / norm) / 18, tensor_error += std::sqrt(tensor / norm) / 18;
  }
  std::printf("mean relative row error against FP: per token %.3g, per tensor %.3g\n", token_error, tensor_error);
  EXPECT_LT(token_error, 0.02);
  EXPECT_LT(token_error, 0.1 * tensor_error);
}

// Linears sharing their input's quantization (query, key, value): bit for bit the unshared outputs, per token and
// per tensor, on every path; a different tensor in the middle of a round, a tensor modified in place between
// rounds, and a new round on the same tensor are all quantized afresh.
TEST(QuantizedLinear, SharedInputQuantizationEqualsUnsharedBitForBit) {
  constexpr int64_t K = 70;
  const int64_t out_features[] = {37, 16, 70};
  const Tensor bias = random_tensor({37}, 32);
  const Tensor x = Tensor::from_vector(random_values(6 * K, -2.0f, 3.0f, 33), {2, 3, K});
  const Tensor other = Tensor::from_vector(random_values(6 * K, -5.0f, 1.0f, 34), {2, 3, K});
  autograd::NoGradGuard no_grad;
  for (bool per_token : {true, false}) {
    for (Int8GemmIsa isa : int8_gemm_available_isas()) {
      SCOPED_TRACE(std::string(per_token ? "per token " : "per tensor ") + int8_gemm_isa_name(isa));
      std::vector<QuantizedLinear> shared, alone;
      for (int copy = 0; copy < 2; ++copy) {
        for (int i = 0; i < 3; ++i) {
          const QuantizedWeight qw = quantize_weight(random_tensor({out_features[i], K}, 30 + i),
                                                     scheme(8, Granularity::kPerChannel));
          const Tensor b = i == 0 ? bias : Tensor();
          absl::StatusOr<QuantizedLinear> q =
              per_token ? QuantizedLinear::create_per_token(qw, b, 8, isa)
                        : QuantizedLinear::create(qw, b, ActivationQuantParams::from_range({-5.0f, 3.0f}, 8), isa);
          ASSERT_TRUE(q.ok()) << q.status();
          (copy == 0 ? shared : alone).push_back(std::move(*q));
        }
      }
      ASSERT_TRUE(QuantizedLinear::share_input({&shared[0], &shared[1], &shared[2]}).ok());
      const auto expect_same = [&](int i, const Tensor& input, const char* what) {
        const std::vector<float> got = values(shared[i].forward(input)), want = values(alone[i].forward(input));
        ASSERT_EQ(got.size(), want.size());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << what << " linear " << i;
      };
      for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 3; ++i) expect_same(i, x, "a round on x");
      }
      expect_same(0, x, "round start");
      expect_same(1, other, "another tensor mid-round");
      expect_same(2, x, "back to x");
      Tensor mutable_x = x.contiguous().clone();
      for (int i = 0; i < 3; ++i) expect_same(i, mutable_x, "a round on a copy");
      mutable_x.data<float>()[5] = 40.0f;  // modified in place between rounds
      for (int i = 0; i < 3; ++i) expect_same(i, mutable_x, "after an in-place change");
    }
  }
  // Different input quantization cannot be shared.
  const QuantizedWeight qw = quantize_weight(random_tensor({8, K}, 40), scheme(8, Granularity::kPerChannel));
  absl::StatusOr<QuantizedLinear> a = QuantizedLinear::create_per_token(qw, Tensor(), 8);
  absl::StatusOr<QuantizedLinear> b = QuantizedLinear::create_per_token(qw, Tensor(), 7);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(QuantizedLinear::share_input({&*a, &*b}).ok());
  EXPECT_FALSE(QuantizedLinear::share_input({&*a}).ok());
}

TEST(QuantizedLinear, RefusesWhatItCannotExecute) {
  const Tensor W = random_tensor({8, 32}, 1);
  const Tensor bias = random_tensor({8}, 2);
  const ActivationQuantParams input = ActivationQuantParams::from_range({-1.0f, 1.0f}, 8);
  const auto refused = [&](const QuantizedWeight& qw, const ActivationQuantParams& in, const char* reason) {
    const absl::StatusOr<QuantizedLinear> q = QuantizedLinear::create(qw, bias, in);
    ASSERT_FALSE(q.ok());
    EXPECT_NE(q.status().message().find(reason), std::string::npos) << q.status();
  };
  refused(quantize_weight(W, scheme(8, Granularity::kPerGroup)), input, "per_group");
  refused(quantize_weight(W, scheme(8, Granularity::kPerChannel, /*symmetric=*/false)), input, "symmetric");
  refused(quantize_weight(W, scheme(8, Granularity::kPerTensor)), ActivationQuantParams::from_range({-1, 1}, 12),
          "at most 8 bits");
  refused(quantize_weight(W, scheme(8, Granularity::kPerTensor)), ActivationQuantParams::from_range({2, 3}, 8),
          "zero point");
  for (int bits : {1, 9}) {
    const absl::StatusOr<QuantizedLinear> q =
        QuantizedLinear::create_per_token(quantize_weight(W, scheme(8, Granularity::kPerTensor)), bias, bits);
    EXPECT_FALSE(q.ok()) << bits << " bits";
  }
  EXPECT_FALSE(QuantizedLinear::create_per_token(quantize_weight(W, scheme(8, Granularity::kPerGroup)), bias, 8).ok());

  absl::StatusOr<QuantizedLinear> q = QuantizedLinear::create(quantize_weight(W, scheme(8, Granularity::kPerTensor)),
                                                              bias, input);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->input_quantization(), QuantizedLinear::InputQuantization::kPerTensor);
  EXPECT_EQ(q->input_params().zero_point, input.zero_point);
  EXPECT_THROW(q->forward(random_tensor({2, 32}, 3)), Error);  // grad mode is on
  absl::StatusOr<QuantizedLinear> per_token =
      QuantizedLinear::create_per_token(quantize_weight(W, scheme(8, Granularity::kPerTensor)), bias, 8);
  ASSERT_TRUE(per_token.ok());
  EXPECT_THROW(per_token->input_params(), Error);  // no static parameters
  autograd::NoGradGuard no_grad;
  EXPECT_THROW(q->forward(random_tensor({2, 31}, 3)), Error);  // wrong K
  Tensor with_infinity = random_tensor({2, 32}, 3);
  with_infinity.data<float>()[40] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(per_token->forward(with_infinity), Error);  // a token without a finite range
  EXPECT_NO_THROW(q->forward(with_infinity));              // per tensor: clamped to the top code
}

// ---- A PTQ W8A8 model -----------------------------------------------------------------------------------------

const MlmVocab kVocab{/*size=*/40, /*pad=*/0, /*unk=*/1, /*cls=*/2, /*sep=*/3, /*mask=*/4};

class Int8Model : public TempDirTest {
 protected:
  Int8Model() : TempDirTest("int8_model") {}

  void SetUp() override {
    TempDirTest::SetUp();
    write_random_corpus(path("train.zst"), 60, 1);
    write_random_corpus(path("validation.zst"), 20, 2);
    model_ = std::make_unique<BertForMaskedLM>(config(), /*init_seed=*/9);
    model_->eval();
  }

  static BertConfig config() {
    BertConfig c = small_bert_config(kVocab.size, 32, 2, 16);
    c.initializer_range = 0.2f;  // activations of a few units, so quantization matters
    return c;
  }

  // Documents of 8..27 ids drawn from a skewed distribution over the non-special ids.
  void write_random_corpus(const std::string& file, int documents, uint32_t seed) {
    std::mt19937 rng(seed);
    ShardWriter writer;
    ASSERT_TRUE(writer.open(file, kVocab.size).ok());
    for (int d = 0; d < documents; ++d) {
      std::vector<uint32_t> ids(8 + rng() % 20);
      for (uint32_t& id : ids) id = 5 + (rng() % 35) * (rng() % 35) / 35;
      ASSERT_TRUE(writer.add_document(ids).ok());
    }
    ASSERT_TRUE(writer.close().ok());
  }

  DataLoader loader(const std::string& file) {
    DataLoaderOptions options;
    options.max_seq_len = 16;
    options.batch_size = 8;
    options.seed = 3;
    options.shuffle = false;
    absl::StatusOr<DataLoader> l = DataLoader::open({path(file)}, kVocab, options);
    BF_CHECK(l.ok(), l.status().ToString());
    return std::move(*l);
  }

  PtqResult ptq(Granularity granularity, std::vector<std::string> exclude = {}) {
    PtqOptions o;
    o.exclude = std::move(exclude);
    o.weights.granularity = granularity;
    o.weights.group_size = 16;
    o.calibration.batches = 4;
    DataLoader calibration = loader("train.zst");
    absl::StatusOr<PtqResult> result = quantize_ptq(*model_, calibration, o);
    BF_CHECK(result.ok(), result.status().ToString());
    return std::move(*result);
  }

  QuantizedBert build(const PtqResult& result, QuantizedExecution execution) {
    absl::StatusOr<QuantizedBert> q =
        build_quantized_bert(result.state, config(), result.activations, {execution, /*fake_quant_taps=*/true});
    BF_CHECK(q.ok(), q.status().ToString());
    return std::move(*q);
  }

  std::unique_ptr<BertForMaskedLM> model_;
};

TEST_F(Int8Model, LogitsAndPerplexityMatchTheFakeQuantModel) {
  // With every tap point quantized, each Linear's output is fake-quantized at once, which snaps the rounding
  // differences back onto the same grid point (logits agree bit for bit here); with the Linear outputs left FP
  // (the third case) the differences reach the logits.
  const std::vector<std::string> linear_outputs = {"query", "key", "value", "attention_output", "intermediate",
                                                   "ffn_output"};
  const struct {
    Granularity granularity;
    std::vector<std::string> exclude;
  } cases[] = {{Granularity::kPerTensor, {}}, {Granularity::kPerChannel, {}}, {Granularity::kPerChannel, linear_outputs}};
  for (const auto& [granularity, exclude] : cases) {
    const PtqResult result = ptq(granularity, exclude);
    QuantizedBert fake = build(result, QuantizedExecution::kFakeQuant);
    QuantizedBert int8 = build(result, QuantizedExecution::kInt8);
    EXPECT_TRUE(int8.model->layers[1]->output_dense.has_forward_override());
    EXPECT_FALSE(fake.model->layers[1]->output_dense.has_forward_override());

    DataLoader validation = loader("validation.zst");
    const MlmBatch batch = validation.next();
    std::vector<float> fake_logits, int8_logits;
    {
      autograd::NoGradGuard no_grad;
      fake_logits = values(fake.model->forward(batch.input_ids, batch.token_type_ids, batch.attention_mask).logits);
      int8_logits = values(int8.model->forward(batch.input_ids, batch.token_type_ids, batch.attention_mask).logits);
    }
    const double logits_error = relative_max_error(int8_logits, fake_logits);
    DataLoader v1 = loader("validation.zst"), v2 = loader("validation.zst");
    const double fake_ppl = evaluate_perplexity(*fake.model, v1).perplexity;
    const double int8_ppl = evaluate_perplexity(*int8.model, v2).perplexity;
    std::printf("%s%s: logits max |int8 - fake| / max |fake| = %.3g; perplexity fake-quant %.6f int8 %.6f "
                "(rel %.3g)\n", granularity_name(granularity), exclude.empty() ? "" : ", Linear outputs FP", logits_error, fake_ppl, int8_ppl,
                std::fabs(int8_ppl / fake_ppl - 1.0));
    // Same codes and integer sums; only the FP32 accumulation order differs, but a rounding difference can move
    // a downstream activation across a quantization step, so the bound is not a few ulps.
    EXPECT_LT(logits_error, 2e-4);
    EXPECT_NEAR(int8_ppl / fake_ppl, 1.0, 1e-4);
  }
}

TEST_F(Int8Model, RefusesSchemesWithoutInt8Execution) {
  const auto refused = [&](const PtqResult& result, const char* reason) {
    const absl::StatusOr<QuantizedBert> q =
        build_quantized_bert(result.state, config(), result.activations, {QuantizedExecution::kInt8});
    ASSERT_FALSE(q.ok());
    EXPECT_NE(q.status().message().find(reason), std::string::npos) << q.status();
  };
  PtqResult per_group = ptq(Granularity::kPerGroup);
  refused(per_group, "per_group");

  PtqResult asymmetric = ptq(Granularity::kPerChannel);
  QuantizedWeight& first = asymmetric.state.quantized.front().second;
  first = quantize_weight(dequantize(first), scheme(8, Granularity::kPerChannel, /*symmetric=*/false));
  refused(asymmetric, "symmetric");

  PtqResult excluded = ptq(Granularity::kPerTensor);
  excluded.activations.exclude = {"gelu"};
  refused(excluded, "layer.0.gelu quantized, but it is excluded");

  PtqResult weight_only = ptq(Granularity::kPerTensor);
  weight_only.activations = ActivationQuantSpec{};
  refused(weight_only, "activations quantized to at most 8 bits, the model has FP");
}

}  // namespace
}  // namespace bertforge::quant
