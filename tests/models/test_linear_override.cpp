// Linear::set_forward_override (models/layers.h): an override is called with the Linear's input and its result is
// what forward returns, also deep inside a BERT; clearing it restores the floating-point path bit for bit.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "models/bert.h"
#include "models/layers.h"
#include "ops/matmul.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

std::vector<float> values(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

TEST(LinearOverride, IsCalledWithTheInputAndItsOutputIsUsed) {
  Linear fc(3, 2, 0.5f);
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 3});
  const std::vector<float> fp = values(fc.forward(x));
  EXPECT_EQ(fp, values(linear(x, fc.weight, fc.bias)));
  EXPECT_FALSE(fc.has_forward_override());

  int calls = 0;
  Shape seen;
  fc.set_forward_override([&](const Tensor& in) {
    ++calls;
    seen = in.shape();
    return Tensor::full({2, 2, 2}, 7.0f);
  });
  EXPECT_TRUE(fc.has_forward_override());
  const Tensor y = fc.forward(x);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, (Shape{2, 2, 3}));
  EXPECT_EQ(values(y), std::vector<float>(8, 7.0f));

  fc.set_forward_override(nullptr);
  EXPECT_FALSE(fc.has_forward_override());
  EXPECT_EQ(values(fc.forward(x)), fp);
  EXPECT_EQ(calls, 1);
}

TEST(LinearOverride, ReplacesALinearInsideBert) {
  BertForMaskedLM model(small_bert_config(/*vocab=*/30, /*hidden=*/16, /*heads=*/2, /*max_positions=*/8),
                        /*init_seed=*/3);
  model.eval();
  const Tensor ids = Tensor::from_vector<int64_t>({5, 6, 7, 8, 9, 10}, {1, 6});
  const std::vector<float> fp = values(model.encode(ids, Tensor(), Tensor()));

  // The same math through the override: identical output; the override sees (B,T,I).
  Linear& dense = model.layers[1]->output_dense;
  int calls = 0;
  dense.set_forward_override([&](const Tensor& x) {
    ++calls;
    EXPECT_EQ(x.shape(), (Shape{1, 6, model.config().intermediate_size}));
    return linear(x, dense.weight, dense.bias);
  });
  EXPECT_EQ(values(model.encode(ids, Tensor(), Tensor())), fp);
  EXPECT_EQ(calls, 1);

  // A different result propagates to the output.
  dense.set_forward_override([&](const Tensor& x) { return Tensor::zeros({1, 6, model.config().hidden_size}); });
  EXPECT_NE(values(model.encode(ids, Tensor(), Tensor())), fp);

  dense.set_forward_override(nullptr);
  EXPECT_EQ(values(model.encode(ids, Tensor(), Tensor())), fp);
}

}  // namespace
}  // namespace bertforge
