// bf_demo: the smallest end-to-end training run of the framework, for reading the
// core, autograd and ops layers without BERT around them. A two-layer MLP with LayerNorm, GELU and
// dropout learns to classify points of three interleaved spirals with AdamW;
// it prints the falling loss and the final accuracy on held-out points.
//
//   bf_demo [--steps N] [--seed S]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/philox.h"
#include "ops/activation.h"
#include "ops/adamw.h"
#include "ops/cross_entropy.h"
#include "ops/dropout.h"
#include "ops/layernorm.h"
#include "ops/matmul.h"

using namespace bertforge;

namespace {

constexpr int64_t kClasses = 3;
constexpr int64_t kHidden = 64;

// n points (x, y) on `kClasses` noisy spiral arms; labels are the arm index.
void make_spirals(int64_t n, uint64_t seed, Tensor* points, Tensor* labels) {
  *points = Tensor::empty({n, 2});
  *labels = Tensor::empty({n}, DType::kI64);
  float* p = points->data<float>();
  int64_t* y = labels->data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t arm = i % kClasses;
    const float t = philox_uniform(seed, 0, i);  // position along the arm
    const float radius = t;
    const float angle = 4.0f * t + 2.0943951f * arm + 0.2f * philox_normal(seed, 1, i);
    p[2 * i] = radius * std::cos(angle);
    p[2 * i + 1] = radius * std::sin(angle);
    y[i] = arm;
  }
}

struct Mlp {
  Tensor w1, b1, ln_w, ln_b, w2, b2;

  explicit Mlp(uint64_t seed) {
    w1 = Tensor::empty({kHidden, 2});
    fill_normal(w1, seed, 10, 0.0f, 0.7f);
    b1 = Tensor::zeros({kHidden});
    ln_w = Tensor::ones({kHidden});
    ln_b = Tensor::zeros({kHidden});
    w2 = Tensor::empty({kClasses, kHidden});
    fill_normal(w2, seed, 11, 0.0f, 0.1f);
    b2 = Tensor::zeros({kClasses});
    for (Tensor* t : params()) t->set_requires_grad(true);
  }
  std::vector<Tensor*> params() { return {&w1, &b1, &ln_w, &ln_b, &w2, &b2}; }

  // x (n, 2) -> logits (n, kClasses)
  Tensor forward(const Tensor& x, bool training, uint64_t step) {
    Tensor h = gelu(layer_norm(linear(x, w1, b1), ln_w, ln_b, 1e-5f));
    h = dropout(h, 0.1f, dropout_key(/*seed=*/7, step, /*rank=*/0, /*tensor_id=*/0), training);
    return linear(h, w2, b2);
  }
};

float accuracy(const Tensor& logits, const Tensor& labels) {
  const std::vector<float> l = logits.to_float_vector();
  const int64_t* y = labels.data<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < labels.numel(); ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < kClasses; ++c) {
      if (l[i * kClasses + c] > l[i * kClasses + best]) best = c;
    }
    correct += best == y[i];
  }
  return static_cast<float>(correct) / static_cast<float>(labels.numel());
}

bool parse_flag(int argc, char** argv, int* i, const char* name, int64_t* value) {
  if (std::strcmp(argv[*i], name) != 0) return false;
  if (*i + 1 >= argc || !absl::SimpleAtoi(argv[*i + 1], value) || *value < 0) {
    std::fprintf(stderr, "bf_demo: %s needs a non-negative integer\n", name);
    std::exit(2);
  }
  ++*i;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 600, seed = 1;
  for (int i = 1; i < argc; ++i) {
    if (parse_flag(argc, argv, &i, "--steps", &steps) || parse_flag(argc, argv, &i, "--seed", &seed)) continue;
    std::fprintf(stderr, "bf_demo: unknown flag %s\nusage: bf_demo [--steps N] [--seed S]\n", argv[i]);
    return 2;
  }
  try {
    Tensor train_x, train_y, test_x, test_y;
    make_spirals(3000, seed, &train_x, &train_y);
    make_spirals(900, seed + 1000, &test_x, &test_y);
    Mlp mlp(seed);
    std::vector<Tensor> m, v;
    for (Tensor* p : mlp.params()) {
      m.push_back(Tensor::zeros_like(*p));
      v.push_back(Tensor::zeros_like(*p));
    }
    const AdamWConfig config{/*lr=*/0.01f};
    std::printf("bf_demo: 2-64-3 MLP (LayerNorm, GELU, dropout 0.1) on 3 spirals, AdamW lr %.3g, %lld steps\n",
                config.lr, static_cast<long long>(steps));
    for (int64_t step = 1; step <= steps; ++step) {
      Tensor loss = cross_entropy(mlp.forward(train_x, /*training=*/true, step), train_y);
      autograd::backward(loss);
      std::vector<Tensor*> params = mlp.params();
      for (size_t k = 0; k < params.size(); ++k) {
        adamw_step(*params[k], params[k]->grad(), m[k], v[k], config, step);
        params[k]->set_grad(Tensor());
      }
      if (step == 1 || step % 100 == 0) {
        std::printf("step %5lld  train loss %.4f\n", static_cast<long long>(step), loss.item<float>());
      }
    }
    autograd::NoGradGuard no_grad;
    Tensor logits = mlp.forward(test_x, /*training=*/false, 0);
    std::printf("held-out loss %.4f, accuracy %.1f%% (chance 33.3%%)\n",
                cross_entropy(logits, test_y).item<float>(), 100.0f * accuracy(logits, test_y));
  } catch (const Error& e) {
    std::fprintf(stderr, "bf_demo: %s\n", e.what());
    return 1;
  }
  return 0;
}
