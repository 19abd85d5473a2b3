// A check shared by the simulated-GPU test (tests/cuda_sim) and the real-GPU test (tests/cuda):
// three BERT training steps on a device give the same losses and weights as on the CPU.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "models/bert.h"
#include "ops/autocast.h"
#include "train/optimizer.h"
#include "tests/support/test_support.h"

namespace bertforge::test_support {

// A batch of 2 sequences of 9 tokens, the last two of the second one padding, 5 labelled positions.
struct ParityBatch {
  Tensor input_ids, token_type_ids, attention_mask, labels;
  ParityBatch to(Device device) const {
    return {input_ids.to(device), token_type_ids.to(device), attention_mask.to(device), labels.to(device)};
  }
};

inline ParityBatch parity_batch(int64_t vocab, uint32_t seed) {
  const std::vector<float> draws = random_values(18, 0, 1, seed);
  std::vector<int64_t> ids(18), types(18), labels(18, -100);
  std::vector<float> mask(18, 1.0f);
  for (int i = 0; i < 18; ++i) {
    ids[i] = 1 + static_cast<int64_t>(draws[i] * static_cast<float>(vocab - 1));
    types[i] = i % 9 >= 5 ? 1 : 0;
  }
  mask[16] = mask[17] = 0.0f;
  for (int i : {1, 4, 8, 10, 13}) labels[i] = (ids[i] * 7) % vocab;
  return {Tensor::from_vector(ids, {2, 9}), Tensor::from_vector(types, {2, 9}), Tensor::from_vector(mask, {2, 9}),
          Tensor::from_vector(labels, {2, 9})};
}

// Moves `model` to `device` and runs `steps` AdamW steps there, forward under an AutocastGuard(mixed_precision)
// (ops/autocast.h; kF32: off); returns the losses.
inline std::vector<float> parity_train_steps(BertForMaskedLM& model, Device device, int steps,
                                             DType mixed_precision) {
  model.to(device);
  model.train();
  AdamWOptimizer optimizer(model.named_parameters(), OptimizerConfig{});
  std::vector<float> losses;
  for (int step = 1; step <= steps; ++step) {
    const ParityBatch batch = parity_batch(model.config().vocab_size, static_cast<uint32_t>(step)).to(device);
    const DropoutContext dropout{7, static_cast<uint64_t>(step), 0, 0};
    Tensor loss;
    {
      const AutocastGuard guard(mixed_precision);
      loss = model.mlm_loss(batch.input_ids, batch.token_type_ids, batch.attention_mask, batch.labels, dropout);
    }
    autograd::backward(loss, Tensor::full({}, 1.0f, DType::kF32, device));
    losses.push_back(loss.to(Device::cpu()).item<float>());
    optimizer.step(1e-3f);
  }
  return losses;
}

// Three steps with dropout 0.1 (and head dropout 0.25 for clipped softmax) on `device` and on the CPU.
// Tolerances: device kernels sum in other orders than the CPU (block reductions, atomics, cuBLAS), which moves
// results by float rounding, and AdamW's first steps (update ~ lr * sign(g)) amplify that in the smallest
// gradients: 1e-4 relative on the losses, 2e-4 absolute on weights of magnitude ~0.1. Under mixed precision both
// sides multiply the same 16-bit operands, but a value that lands by those rounding differences on the other
// side of a 16-bit rounding boundary moves by a 16-bit ulp: 1e-3 on both.
inline void expect_training_matches_cpu(AttentionVariant attention, Device device,
                                        DType mixed_precision = DType::kF32) {
  const double loss_tolerance = mixed_precision == DType::kF32 ? 1e-4 : 1e-3;
  const float weight_tolerance = mixed_precision == DType::kF32 ? 2e-4f : 1e-3f;
  BertConfig config = small_bert_config(/*vocab=*/61, /*hidden=*/32, /*heads=*/4, /*max_positions=*/16, attention);
  config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.1f;
  if (attention == AttentionVariant::kClippedSoftmax) config.head_dropout_prob = 0.25f;
  BertForMaskedLM on_cpu(config, /*init_seed=*/3), on_device(config, /*init_seed=*/3);
  const std::vector<float> cpu_losses = parity_train_steps(on_cpu, Device::cpu(), 3, mixed_precision);
  const std::vector<float> device_losses = parity_train_steps(on_device, device, 3, mixed_precision);
  ASSERT_EQ(device_losses.size(), cpu_losses.size());
  for (size_t i = 0; i < cpu_losses.size(); ++i) {
    EXPECT_NEAR(device_losses[i], cpu_losses[i], loss_tolerance * std::fabs(cpu_losses[i])) << "loss of step " << i + 1;
  }
  const auto cpu_parameters = on_cpu.named_parameters(), device_parameters = on_device.named_parameters();
  ASSERT_EQ(cpu_parameters.size(), device_parameters.size());
  for (size_t i = 0; i < cpu_parameters.size(); ++i) {
    const std::string& name = device_parameters[i].first;
    ASSERT_EQ(device_parameters[i].second.device(), device) << name;
    const std::vector<float> got = device_parameters[i].second.to(Device::cpu()).to_float_vector();
    const std::vector<float> want = cpu_parameters[i].second.to_float_vector();
    int misses = 0;
    for (size_t k = 0; k < want.size(); ++k) {
      if (!(std::fabs(got[k] - want[k]) <= weight_tolerance) && ++misses <= 3) {
        ADD_FAILURE() << name << "[" << k << "]: " << device.str() << " " << got[k] << ", cpu " << want[k];
      }
    }
    EXPECT_EQ(misses, 0) << name;
  }
}

// The attention variants, named for a parameterised test: INSTANTIATE_TEST_SUITE_P(AttentionVariants, Suite,
// kParityAttentionVariants, parity_test_name).
inline const auto kParityAttentionVariants = ::testing::Values(
    AttentionVariant::kSoftmax, AttentionVariant::kClippedSoftmax, AttentionVariant::kGated);
inline std::string parity_test_name(const ::testing::TestParamInfo<AttentionVariant>& info) {
  return attention_variant_name(info.param);
}

}  // namespace bertforge::test_support
