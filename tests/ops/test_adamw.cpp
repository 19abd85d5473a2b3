// tests/ops/test_adamw.cpp — adamw_step against torch.optim.AdamW trajectories
// (tests/ops/fixtures/adamw.txt, made by tests/ops/make_adamw_fixture.py), the
// closed form of the first step, a double-precision reference on a tensor large
// enough for the parallel path, and argument checks.
//
// Tolerance against torch, per element: |got - ref| <= 1e-6 * |ref| + 2^-22 * terms,
// i.e. 1e-6 relative, plus two float ulps of `terms`, the sum of the absolute values
// of the terms that were added to make ref (for m: beta1 |m_prev| + (1 - beta1) |g|).
// That floor matters only where terms cancel to near zero (m when g flips sign):
// such an element keeps the absolute rounding error of its terms, and the compiler
// may fuse a multiply-add that torch rounds twice. Float rounding is ~1e-7 relative.
#include "ops/adamw.h"

#include "ops/elementwise.h"
#include "ops/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace bertforge {
namespace {

struct FixtureStep {
  std::vector<float> grad, param, m, v;  // grad, then the state after the step
};

struct FixtureCase {
  std::string name;
  AdamWConfig config;
  std::vector<float> param0;
  std::vector<FixtureStep> steps;
};

std::vector<float> ReadValues(std::istream& in, const std::string& label, int64_t n) {
  std::string token;
  in >> token;
  EXPECT_EQ(token, label) << "fixture out of sync";
  std::vector<float> values(n);
  for (float& value : values) in >> value;
  return values;
}

std::vector<FixtureCase> ReadFixture() {
  const std::string path = std::string(BERTFORGE_SOURCE_DIR) + "/tests/ops/fixtures/adamw.txt";
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << "cannot open " << path;
  std::vector<FixtureCase> cases;
  std::string line;
  std::stringstream body;
  while (std::getline(file, line)) {
    if (!line.empty() && line[0] != '#') body << line << '\n';
  }
  std::string token;
  while (body >> token) {
    EXPECT_EQ(token, "case");
    FixtureCase c;
    int64_t n = 0, steps = 0;
    body >> c.name >> c.config.lr >> c.config.beta1 >> c.config.beta2 >> c.config.eps >> c.config.weight_decay >> n >>
        steps;
    c.param0 = ReadValues(body, "param0", n);
    for (int64_t s = 0; s < steps; ++s) {
      FixtureStep step;
      step.grad = ReadValues(body, "grad", n);
      step.param = ReadValues(body, "param", n);
      step.m = ReadValues(body, "m", n);
      step.v = ReadValues(body, "v", n);
      c.steps.push_back(step);
    }
    cases.push_back(c);
  }
  return cases;
}

void ExpectMatchesTorch(const Tensor& got_tensor, const std::vector<float>& ref, const std::vector<double>& terms,
                        const std::string& what) {
  const std::vector<float> got = got_tensor.to_float_vector();
  ASSERT_EQ(got.size(), ref.size()) << what;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double tolerance = 1e-6 * std::fabs(static_cast<double>(ref[i])) + 2 * FLT_EPSILON * terms[i];
    EXPECT_LE(std::fabs(static_cast<double>(got[i]) - ref[i]), tolerance)
        << what << " element " << i << ": got " << got[i] << ", torch " << ref[i];
  }
}

TEST(AdamW, MatchesTorchTrajectories) {
  const std::vector<FixtureCase> cases = ReadFixture();
  ASSERT_EQ(cases.size(), 3u);
  for (const FixtureCase& c : cases) {
    const int64_t n = static_cast<int64_t>(c.param0.size());
    Tensor param = Tensor::from_vector(c.param0, {n});
    Tensor m = Tensor::zeros({n}), v = Tensor::zeros({n});
    // torch's state before the step, for the tolerance terms.
    std::vector<float> prev_param = c.param0, prev_m(n, 0.0f), prev_v(n, 0.0f);
    const double b1 = c.config.beta1, b2 = c.config.beta2;
    const double decay = 1.0 - static_cast<double>(c.config.lr) * c.config.weight_decay;
    for (size_t s = 0; s < c.steps.size(); ++s) {
      const FixtureStep& step = c.steps[s];
      adamw_step(param, Tensor::from_vector(step.grad, {n}), m, v, c.config, static_cast<int64_t>(s) + 1);
      std::vector<double> param_terms(n), m_terms(n), v_terms(n);
      for (int64_t i = 0; i < n; ++i) {
        const double g = step.grad[i], decayed = prev_param[i] * decay;
        param_terms[i] = std::fabs(decayed) + std::fabs(step.param[i] - decayed);
        m_terms[i] = b1 * std::fabs(prev_m[i]) + (1 - b1) * std::fabs(g);
        v_terms[i] = b2 * prev_v[i] + (1 - b2) * g * g;
      }
      const std::string where = c.name + " step " + std::to_string(s + 1) + " ";
      ExpectMatchesTorch(param, step.param, param_terms, where + "param");
      ExpectMatchesTorch(m, step.m, m_terms, where + "m");
      ExpectMatchesTorch(v, step.v, v_terms, where + "v");
      prev_param = step.param;
      prev_m = step.m;
      prev_v = step.v;
    }
  }
}

TEST(AdamW, FirstStepIsSignOfGradient) {
  const AdamWConfig config{/*lr=*/0.01f, 0.9f, 0.999f, /*eps=*/1e-8f, /*weight_decay=*/0.1f};
  const std::vector<float> p0 = {1.0f, -2.0f, 0.5f, 3.0f, -0.25f};
  const std::vector<float> g = {0.3f, -1e-3f, 250.0f, -7.0f, 0.0f};
  Tensor param = Tensor::from_vector(p0, {5});
  Tensor m = Tensor::zeros({5}), v = Tensor::zeros({5});
  adamw_step(param, Tensor::from_vector(g, {5}), m, v, config, 1);
  const std::vector<float> got = param.to_float_vector(), got_m = m.to_float_vector(), got_v = v.to_float_vector();
  for (size_t i = 0; i < p0.size(); ++i) {
    const double decayed = p0[i] * (1.0 - 0.01 * 0.1);
    const double expected = decayed - 0.01 * g[i] / (std::fabs(g[i]) + 1e-8);
    EXPECT_NEAR(got[i], expected, 1e-6 * std::fabs(expected)) << "element " << i;
    const double sign = g[i] > 0 ? 1.0 : (g[i] < 0 ? -1.0 : 0.0);
    EXPECT_NEAR(got[i], decayed - 0.01 * sign, 1e-5) << "element " << i << " moved by about lr * sign(g)";
    // (1 - beta) of the float betas: 1 - 0.999f is 0.00099998713, not 0.001.
    const double m_expected = (1.0 - static_cast<double>(config.beta1)) * g[i];
    const double v_expected = (1.0 - static_cast<double>(config.beta2)) * g[i] * g[i];
    EXPECT_NEAR(got_m[i], m_expected, 1e-6 * std::fabs(m_expected)) << "m element " << i;
    EXPECT_NEAR(got_v[i], v_expected, 1e-6 * v_expected) << "v element " << i;
  }
}

// A tensor above the kernel's parallel threshold, in the middle of training (step 7,
// non-zero moments), against the same update in double precision: 1e-5 relative
// (float rounding through a dozen operations, and eps-dominated denominators).
TEST(AdamW, LargeTensorMatchesDoubleReference) {
  const int64_t n = 200003;
  const AdamWConfig config{/*lr=*/1e-3f, 0.9f, 0.999f, /*eps=*/1e-6f, /*weight_decay=*/0.01f};
  const int64_t step = 7;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> p(n), g(n), m0(n), v0(n);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = normal(rng);
    g[i] = normal(rng);
    m0[i] = 0.1f * normal(rng);
    v0[i] = 0.01f * std::fabs(normal(rng));
  }
  Tensor param = Tensor::from_vector(p, {n}), m = Tensor::from_vector(m0, {n}), v = Tensor::from_vector(v0, {n});
  adamw_step(param, Tensor::from_vector(g, {n}), m, v, config, step);
  const std::vector<float> got = param.to_float_vector();
  const double b1 = config.beta1, b2 = config.beta2, lr = config.lr;
  int failures = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double mi = b1 * m0[i] + (1 - b1) * g[i];
    const double vi = b2 * v0[i] + (1 - b2) * static_cast<double>(g[i]) * g[i];
    const double m_hat = mi / (1 - std::pow(b1, step)), v_hat = vi / (1 - std::pow(b2, step));
    const double update = lr * m_hat / (std::sqrt(v_hat) + config.eps);
    const double expected = p[i] * (1 - lr * config.weight_decay) - update;
    if (!(std::fabs(got[i] - expected) <= 1e-5 * std::fabs(expected) + 1e-9) && ++failures <= 5) {
      ADD_FAILURE() << "element " << i << ": got " << got[i] << ", expected " << expected;
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(AdamW, RejectsBadArguments) {
  const AdamWConfig config;
  Tensor param = Tensor::zeros({4, 3}), grad = Tensor::zeros({4, 3});
  Tensor m = Tensor::zeros({4, 3}), v = Tensor::zeros({4, 3});
  Tensor wrong_shape = Tensor::zeros({3, 4});
  EXPECT_THROW(adamw_step(param, wrong_shape, m, v, config, 1), Error);
  EXPECT_THROW(adamw_step(param, grad, wrong_shape, v, config, 1), Error);
  Tensor int_grad = Tensor::zeros({4, 3}, DType::kI64);
  EXPECT_THROW(adamw_step(param, int_grad, m, v, config, 1), Error);
  EXPECT_THROW(adamw_step(param, grad, m, v, config, 0), Error);  // steps count from 1
  Tensor transposed = Tensor::zeros({3, 4}).transpose(0, 1);     // (4, 3), not contiguous
  EXPECT_THROW(adamw_step(transposed, grad, m, v, config, 1), Error);
  AdamWConfig bad_beta = config;
  bad_beta.beta2 = 1.0f;
  EXPECT_THROW(adamw_step(param, grad, m, v, bad_beta, 1), Error);
  // A non-contiguous gradient is fine: it is only read.
  Tensor grad_t = Tensor::ones({3, 4}).transpose(0, 1);
  EXPECT_NO_THROW(adamw_step(param, grad_t, m, v, config, 1));
  EXPECT_NE(m.to_float_vector()[0], 0.0f);
}

// The list version equals adamw_step on each tensor with its gradient scaled first: bit for bit, on tensors of
// several chunks (kMultiTensorChunk), one element, and none, with and without weight decay.
TEST(AdamW, ManyEqualsOneAtATimeWithScaledGradients) {
  const AdamWConfig config{/*lr=*/1e-3f, 0.9f, 0.999f, /*eps=*/1e-6f, /*weight_decay=*/0.05f};
  const float grad_scale = 0.37f;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto random = [&](int64_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return Tensor::from_vector(v, {n});
  };
  std::vector<AdamWTensors> many;
  std::vector<AdamWTensors> one_at_a_time;
  for (int64_t n : {2 * kMultiTensorChunk + 17, int64_t{1}, int64_t{0}, int64_t{1000}}) {
    const Tensor param = random(n), grad = random(n), m = scale(random(n), 0.1f), r = random(n), v = mul(r, r);
    many.push_back({param.clone(), grad, m.clone(), v.clone(), /*decay=*/n != 1});
    one_at_a_time.push_back({param.clone(), scale(grad, grad_scale), m.clone(), v.clone(), n != 1});
  }
  for (int64_t step = 1; step <= 3; ++step) {
    adamw_step_many(many, config, grad_scale, step);
    for (AdamWTensors& t : one_at_a_time) {
      AdamWConfig single = config;
      if (!t.decay) single.weight_decay = 0.0f;
      adamw_step(t.param, t.grad, t.m, t.v, single, step);
    }
  }
  for (size_t i = 0; i < many.size(); ++i) {
    EXPECT_EQ(many[i].param.to_float_vector(), one_at_a_time[i].param.to_float_vector()) << "tensor " << i;
    EXPECT_EQ(many[i].m.to_float_vector(), one_at_a_time[i].m.to_float_vector()) << "tensor " << i;
    EXPECT_EQ(many[i].v.to_float_vector(), one_at_a_time[i].v.to_float_vector()) << "tensor " << i;
  }
  EXPECT_NO_THROW(adamw_step_many({}, config, 1.0f, 1));
  EXPECT_THROW(adamw_step_many(many, config, NAN, 1), Error);
  std::vector<AdamWTensors> mismatched = {{Tensor::zeros({3}), Tensor::zeros({4}), Tensor::zeros({3}),
                                           Tensor::zeros({3}), true}};
  EXPECT_THROW(adamw_step_many(mismatched, config, 1.0f, 1), Error);
}

}  // namespace
}  // namespace bertforge
