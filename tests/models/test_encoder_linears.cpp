// The table of encoder Linears (models/encoder_linears.h): each row's module is the parameter its name says, each
// row's input site is the activation that Linear really reads, and encoder layer names split and join back.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "autograd/grad_mode.h"
#include "models/bert.h"
#include "models/encoder_linears.h"
#include "ops/matmul.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

// 2 layers, C = 16, H = 2, V = 50.
BertConfig small_config() { return test_support::small_bert_config(50, 16, 2, 8); }

TEST(EncoderLinears, TableIsInEnumOrder) {
  for (int i = 0; i < kEncoderLinearCount; ++i) EXPECT_EQ(static_cast<int>(kEncoderLinears[i].linear), i);
}

TEST(EncoderLinears, ModuleIsTheNamedParameter) {
  BertForMaskedLM model(small_config(), 1);
  std::map<std::string, Tensor> parameters;
  for (const auto& [name, tensor] : model.named_parameters()) parameters[name] = tensor;
  for (int64_t l = 0; l < 2; ++l) {
    for (const EncoderLinearInfo& linear : kEncoderLinears) {
      const auto it = parameters.find(linear.weight_name(l));
      ASSERT_NE(it, parameters.end()) << linear.weight_name(l);
      EXPECT_TRUE(linear.module(*model.layers[l]).weight.shares_storage_with(it->second)) << linear.weight_name(l);
    }
  }
  EXPECT_EQ(encoder_linear_info(EncoderLinear::kQuery).weight_name(1),
            "bert.encoder.layer.1.attention.self.query.weight");
}

TEST(EncoderLinears, InputSiteIsWhatTheLinearReads) {
  BertForMaskedLM model(small_config(), 2);
  model.eval();  // dropout off: layer 0's input is embeddings.layer_norm itself
  autograd::NoGradGuard no_grad;
  std::map<std::string, Tensor> tapped;  // by site name
  model.set_hook([&](const TapSite& site, const Tensor& value) {
    tapped[site.name()] = value;
    return value;
  });
  std::map<std::string, Tensor> read;  // by weight name
  for (int64_t l = 0; l < 2; ++l) {
    for (const EncoderLinearInfo& linear : kEncoderLinears) {
      Linear& module = linear.module(*model.layers[l]);
      const std::string name = linear.weight_name(l);
      module.set_forward_override([&read, &module, name](const Tensor& x) {
        read[name] = x;
        return bertforge::linear(x, module.weight, module.bias);
      });
    }
  }
  model.encode(Tensor::from_vector<int64_t>({5, 6, 7, 8, 9, 10}, {2, 3}), {}, {});
  for (int64_t l = 0; l < 2; ++l) {
    for (const EncoderLinearInfo& linear : kEncoderLinears) {
      const std::string site = linear.input_site(l).name();
      ASSERT_EQ(tapped.count(site), 1u) << site;
      EXPECT_EQ(read.at(linear.weight_name(l)).to_float_vector(), tapped.at(site).to_float_vector())
          << linear.weight_name(l) << " reads " << site;
    }
  }
  EXPECT_EQ(layer_input_site(0).name(), "embeddings.layer_norm");
  EXPECT_EQ(layer_input_site(1).name(), "layer.0.layer_output");
}

TEST(EncoderLinears, LayerNamesSplitAndJoin) {
  EXPECT_EQ(encoder_layer_name(3), "bert.encoder.layer.3");
  EXPECT_EQ(encoder_layer_prefix(3), "bert.encoder.layer.3.");
  const auto split = split_encoder_layer_name("bert.encoder.layer.11.output.dense.weight");
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->first, 11);
  EXPECT_EQ(split->second, "output.dense.weight");
  for (const char* other : {"bert.encoder.layer.x.output.dense.weight", "bert.encoder.layer..output.dense.weight",
                            "bert.encoder.layer.3", "bert.encoder.layer.3.", "bert.encoder.layer.-1.output.dense",
                            "encoder.layer.0.output.dense.weight", "cls.predictions.bias"}) {
    EXPECT_FALSE(split_encoder_layer_name(other).has_value()) << other;
  }
}

}  // namespace
}  // namespace bertforge
