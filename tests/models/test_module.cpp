// Module: dotted names in registration order, train/eval propagation, name-keyed initialisation, and state-dict
// loading with its errors (missing, unexpected, shape and dtype mismatches, duplicates) in both modes; also the
// Linear / LayerNorm / Embedding building blocks against their ops.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/safetensors.h"
#include "models/layers.h"
#include "models/module.h"
#include "ops/matmul.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

// A two-level tree: Net { scale, block (fc, out.norm), head (fc, out.norm) }.
class Block : public Module {
 public:
  Block() : fc(3, 4, 0.5f), norm(4, 1e-5f) {
    register_module("fc", fc);
    register_module("out.norm", norm);  // a dotted name flattens a wrapper module
  }
  Linear fc;
  LayerNorm norm;
};

class Net : public Module {
 public:
  Net() {
    scale = register_parameter("scale", {2}, ParamInit::constant(3.0f));
    register_module("block", block);
    register_module("head", head);
    ignore_on_load("head.tied.weight");
  }
  Tensor scale;
  Block block, head;
};

std::vector<std::string> names_of(const Module& m) {
  std::vector<std::string> names;
  for (const auto& [name, p] : m.named_parameters()) names.push_back(name);
  return names;
}

TEST(Module, NamesAreDottedInRegistrationOrder) {
  const Net net;
  const std::vector<std::string> want = {"scale",
                                         "block.fc.weight",
                                         "block.fc.bias",
                                         "block.out.norm.weight",
                                         "block.out.norm.bias",
                                         "head.fc.weight",
                                         "head.fc.bias",
                                         "head.out.norm.weight",
                                         "head.out.norm.bias"};
  EXPECT_EQ(names_of(net), want);
  EXPECT_EQ(net.num_parameters(), 2 + 2 * (12 + 4 + 4 + 4));
  for (const Tensor& p : net.parameters()) EXPECT_TRUE(p.requires_grad());
  // The tensors are the parameters themselves.
  EXPECT_TRUE(net.named_parameters()[1].second.shares_storage_with(net.block.fc.weight));
}

TEST(Module, TrainAndEvalReachEveryDescendant) {
  Net net;
  EXPECT_TRUE(net.block.fc.is_training());
  net.eval();
  EXPECT_FALSE(net.is_training());
  EXPECT_FALSE(net.block.fc.is_training());
  EXPECT_FALSE(net.head.norm.is_training());
  net.train();
  EXPECT_TRUE(net.head.norm.is_training());
}

TEST(Module, InitialisationDependsOnSeedAndName) {
  Net a, b;
  a.init_parameters(1);
  b.init_parameters(1);
  EXPECT_EQ(a.block.fc.weight.to_float_vector(), b.block.fc.weight.to_float_vector());
  // Same shape, different names: different streams.
  EXPECT_NE(a.block.fc.weight.to_float_vector(), a.head.fc.weight.to_float_vector());
  b.init_parameters(2);
  EXPECT_NE(a.block.fc.weight.to_float_vector(), b.block.fc.weight.to_float_vector());
  EXPECT_EQ(a.scale.to_float_vector(), (std::vector<float>{3.0f, 3.0f}));
  EXPECT_EQ(a.block.fc.bias.to_float_vector(), std::vector<float>(4, 0.0f));
  EXPECT_EQ(a.block.norm.weight.to_float_vector(), std::vector<float>(4, 1.0f));
}

TEST(Module, EmbeddingPaddingRowStartsAtZero) {
  Embedding embedding(5, 3, 1.0f, /*padding_idx=*/2);
  embedding.init_parameters(4);
  const std::vector<float> w = embedding.weight.to_float_vector();
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(w[2 * 3 + c], 0.0f);
    EXPECT_NE(w[1 * 3 + c], 0.0f);
  }
}

TEST(Module, LayersComputeTheirOps) {
  Linear fc(3, 2, 1.0f);
  fc.init_parameters(3);
  const Tensor x = random_tensor({4, 3}, 5);
  EXPECT_EQ(fc.forward(x).to_float_vector(), linear(x, fc.weight, fc.bias).to_float_vector());
  Embedding embedding(5, 3, 1.0f);
  embedding.init_parameters(3);
  const Tensor rows = embedding.forward(Tensor::from_vector<int64_t>({4, 0}, {2}));
  const std::vector<float> w = embedding.weight.to_float_vector(), r = rows.to_float_vector();
  EXPECT_EQ(std::vector<float>(r.begin(), r.begin() + 3), std::vector<float>(w.begin() + 12, w.end()));
}

TEST(Module, ZeroGradClearsGradients) {
  Net net;
  net.block.fc.weight.set_grad(Tensor::ones({4, 3}));
  net.zero_grad();
  EXPECT_FALSE(net.block.fc.weight.grad().defined());
}

// ---- State dicts ---------------------------------------------------------------------------------------------

TEST(StateDict, StrictLoadCopiesIntoTheSameTensors) {
  Net source, target;
  source.init_parameters(7);
  target.init_parameters(8);
  const Tensor handle = target.block.fc.weight;
  ASSERT_TRUE(target.load_state_dict(source.state_dict()).ok());
  EXPECT_TRUE(handle.shares_storage_with(target.block.fc.weight));
  EXPECT_EQ(handle.to_float_vector(), source.block.fc.weight.to_float_vector());
  EXPECT_TRUE(target.block.fc.weight.requires_grad());
}

TEST(StateDict, StrictLoadNamesEveryProblemAndLoadsNothing) {
  Net source, target;
  source.init_parameters(7);
  target.init_parameters(8);
  StateDict state = source.state_dict();
  state.erase(state.begin() + 2);                          // block.fc.bias missing
  state.emplace_back("block.extra", Tensor::zeros({1}));  // unexpected
  const std::vector<float> before = target.block.fc.weight.to_float_vector();
  const absl::Status status = target.load_state_dict(state);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "missing: block.fc.bias")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "unexpected: block.extra")) << status;
  EXPECT_EQ(target.block.fc.weight.to_float_vector(), before);
}

TEST(StateDict, ShapeMismatchIsAnErrorInBothModes) {
  Net target;
  StateDict state = target.state_dict();
  state[1].second = Tensor::zeros({3, 4});  // block.fc.weight is (4, 3)
  for (LoadMode mode : {LoadMode::kStrict, LoadMode::kNonStrict}) {
    const absl::Status status = target.load_state_dict(state, mode);
    EXPECT_TRUE(absl::StrContains(status.message(), "block.fc.weight has shape [3, 4] in the state dict but [4, 3]"))
        << status;
  }
}

TEST(StateDict, RejectsDuplicatesAndIntegerTensors) {
  Net target;
  StateDict state = target.state_dict();
  state.push_back(state[0]);
  EXPECT_TRUE(absl::StrContains(target.load_state_dict(state).message(), "scale is given twice"));
  state.pop_back();
  state[0].second = Tensor::zeros({2}, DType::kI64);
  EXPECT_TRUE(absl::StrContains(target.load_state_dict(state).message(), "scale has dtype i64"));
}

TEST(StateDict, NonStrictLoadsWhatMatchesAndReports) {
  Net source, target;
  source.init_parameters(7);
  target.init_parameters(8);
  StateDict state = source.state_dict();
  state.erase(state.begin());  // scale missing
  state.emplace_back("block.extra", Tensor::zeros({1}));
  state.emplace_back("head.tied.weight", Tensor::zeros({9}));  // ignored silently
  LoadReport report;
  ASSERT_TRUE(target.load_state_dict(state, LoadMode::kNonStrict, &report).ok());
  EXPECT_EQ(report.missing, std::vector<std::string>{"scale"});
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"block.extra"});
  EXPECT_EQ(report.str(), "missing: scale; unexpected: block.extra");
  EXPECT_EQ(target.head.fc.weight.to_float_vector(), source.head.fc.weight.to_float_vector());
}

TEST(StateDict, ConvertsHalfPrecisionValues) {
  Net source, target;
  source.init_parameters(7);
  StateDict state = source.state_dict();
  for (auto& [name, t] : state) t = t.to(DType::kBF16);
  ASSERT_TRUE(target.load_state_dict(state).ok());
  EXPECT_EQ(target.block.fc.weight.dtype(), DType::kF32);
  EXPECT_EQ(target.block.fc.weight.to_float_vector(), state[1].second.to_float_vector());
}

class ModuleFiles : public TempDirTest {
 protected:
  ModuleFiles() : TempDirTest("module") {}
};

TEST_F(ModuleFiles, SafetensorsRoundTrip) {
  Net source, target;
  source.init_parameters(7);
  ASSERT_TRUE(save_safetensors(source, path("net.safetensors")).ok());
  absl::StatusOr<SafetensorsFile> file = read_safetensors(path("net.safetensors"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->metadata.at("format"), "pt");
  ASSERT_TRUE(load_safetensors(target, path("net.safetensors")).ok());
  EXPECT_EQ(target.head.norm.bias.to_float_vector(), source.head.norm.bias.to_float_vector());
}

TEST_F(ModuleFiles, LoadErrorsNameTheFile) {
  Net target;
  EXPECT_FALSE(load_safetensors(target, path("absent.safetensors")).ok());
  Linear other(2, 2, 0.1f);
  ASSERT_TRUE(save_safetensors(other, path("other.safetensors")).ok());
  const absl::Status status = load_safetensors(target, path("other.safetensors"));
  EXPECT_TRUE(absl::StrContains(status.message(), path("other.safetensors"))) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "unexpected: weight, bias")) << status;
}

}  // namespace
}  // namespace bertforge
