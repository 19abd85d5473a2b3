// Hidden-state agreement (train/evaluation.h): HiddenStateComparison against closed forms (SQNR of x + noise of a
// known power, cosine of orthogonal noise, padding skipped), the undoing of MLM masking, and compare_hidden_states
// on a small random BERT: a model against itself, and against another model on the unmasked validation text.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/grad_mode.h"
#include "tests/support/synthetic_bert.h"
#include "train/evaluation.h"

namespace bertforge {
namespace {

using test_support::SyntheticBertTest;

TEST(HiddenStateComparison, SqnrAndCosineOfOrthogonalNoiseOfKnownPower) {
  // Two real tokens with signal 2 in every channel (power 4) and noise +-0.5 (power 0.25), orthogonal to the
  // signal; a padding position with a large error that must not count.
  const Tensor reference = Tensor::from_vector<float>({2, 2, 2, 2, -2, -2, -2, -2, 1, 1, 1, 1}, {1, 3, 4});
  const Tensor model = Tensor::from_vector<float>({2.5, 1.5, 2.5, 1.5, -1.5, -2.5, -1.5, -2.5, 9, 9, 9, 9}, {1, 3, 4});
  HiddenStateComparison comparison;
  comparison.add(reference, model, Tensor::from_vector<float>({1, 1, 0}, {1, 3}));
  const HiddenStateAgreement r = comparison.result();
  EXPECT_EQ(r.tokens, 2);
  EXPECT_EQ(r.batches, 1);
  EXPECT_NEAR(r.sqnr_db, 10.0 * std::log10(4.0 / 0.25), 1e-9);
  // cos = |s| / sqrt(|s|^2 + |n|^2) = 1 / sqrt(1 + 1/16) for noise orthogonal to the signal.
  EXPECT_NEAR(r.mean_cosine, 1.0 / std::sqrt(1.0 + 1.0 / 16.0), 1e-9);
}

TEST(HiddenStateComparison, AccumulatesPowersOverBatchesNotPerBatchRatios) {
  // Batch 1: signal 1, noise 1 per element (0 dB); batch 2: signal 9, noise 0. Total: 10 log10(10 / 1).
  HiddenStateComparison comparison;
  comparison.add(Tensor::from_vector<float>({1, 1}, {1, 1, 2}), Tensor::from_vector<float>({2, 0}, {1, 1, 2}),
                 Tensor());
  comparison.add(Tensor::from_vector<float>({3, 3}, {1, 1, 2}), Tensor::from_vector<float>({3, 3}, {1, 1, 2}),
                 Tensor());
  const HiddenStateAgreement r = comparison.result();
  EXPECT_EQ(r.tokens, 2);
  EXPECT_EQ(r.batches, 2);
  EXPECT_NEAR(r.sqnr_db, 10.0, 1e-9);
  // cos((1,1), (2,0)) = 2 / (sqrt(2) * 2) = 1/sqrt(2); the exact copy has cosine 1.
  EXPECT_NEAR(r.mean_cosine, (1.0 / std::sqrt(2.0) + 1.0) / 2.0, 1e-9);
}

TEST(HiddenStateComparison, ExactCopyNegationAndZeros) {
  HiddenStateComparison same;
  const Tensor x = Tensor::from_vector<float>({1, -2, 3, 0.5}, {1, 2, 2});
  same.add(x, x, Tensor());
  EXPECT_EQ(same.result().sqnr_db, std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(same.result().mean_cosine, 1.0);

  HiddenStateComparison negated;  // error 2x: 10 log10(1/4); cosine -1
  negated.add(x, Tensor::from_vector<float>({-1, 2, -3, -0.5}, {1, 2, 2}), Tensor());
  EXPECT_NEAR(negated.result().sqnr_db, -10.0 * std::log10(4.0), 1e-9);
  EXPECT_NEAR(negated.result().mean_cosine, -1.0, 1e-12);

  HiddenStateComparison zeros;  // token 1: both zero (cosine 1); token 2: the model is zero (cosine 0)
  zeros.add(Tensor::from_vector<float>({0, 0, 3, 4}, {1, 2, 2}), Tensor::zeros({1, 2, 2}), Tensor());
  EXPECT_NEAR(zeros.result().sqnr_db, 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(zeros.result().mean_cosine, 0.5);
}

TEST(UnmaskedInputIds, PutsTheLabelsBackWhereTheLoaderMasked) {
  MlmBatch batch;
  batch.input_ids = Tensor::from_vector<int64_t>({2, 4, 7, 9, 3}, {1, 5});
  batch.labels = Tensor::from_vector<int64_t>({-100, 8, -100, 6, -100}, {1, 5});
  const Tensor ids = unmasked_input_ids(batch);
  EXPECT_EQ(std::vector<int64_t>(ids.data<int64_t>(), ids.data<int64_t>() + 5), (std::vector<int64_t>{2, 8, 7, 6, 3}));
  const int64_t* input = batch.input_ids.data<int64_t>();  // not modified
  EXPECT_EQ(std::vector<int64_t>(input, input + 5), (std::vector<int64_t>{2, 4, 7, 9, 3}));
}

class CompareHiddenStates : public SyntheticBertTest {
 protected:
  CompareHiddenStates() : SyntheticBertTest("compare_hidden_states") {}
};

TEST_F(CompareHiddenStates, AModelAgreesWithItselfOnEveryRealToken) {
  DataLoader validation = loader("validation.zst", /*shuffle=*/false);
  const LoaderPosition before = validation.position();
  const HiddenStateAgreement r = compare_hidden_states(*model_, *model_, validation, /*max_batches=*/2);
  EXPECT_EQ(r.sqnr_db, std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(r.mean_cosine, 1.0);
  EXPECT_EQ(r.batches, 2);
  EXPECT_EQ(validation.position().to_json().dump(), before.to_json().dump());  // rewound
  int64_t real = 0;  // the real tokens of the first two batches
  for (int b = 0; b < 2; ++b) {
    for (float m : validation.next().attention_mask.to_float_vector()) real += m != 0.0f;
  }
  EXPECT_EQ(r.tokens, real);
}

TEST_F(CompareHiddenStates, ComparesTwoModelsOnTheUnmaskedText) {
  BertForMaskedLM other(config(), /*init_seed=*/6);
  DataLoader validation = loader("validation.zst", /*shuffle=*/false);
  const HiddenStateAgreement r = compare_hidden_states(*model_, other, validation, /*max_batches=*/0);
  EXPECT_EQ(r.batches, validation.batches_per_epoch());

  // The same sums by hand, on the unmasked and on the masked input ids.
  autograd::NoGradGuard no_grad;
  other.eval();
  HiddenStateComparison unmasked, masked;
  for (int64_t b = 0; b < validation.batches_per_epoch(); ++b) {
    const MlmBatch batch = validation.next();
    const Tensor ids = unmasked_input_ids(batch);
    unmasked.add(model_->encode(ids, batch.token_type_ids, batch.attention_mask),
                 other.encode(ids, batch.token_type_ids, batch.attention_mask), batch.attention_mask);
    masked.add(model_->encode(batch.input_ids, batch.token_type_ids, batch.attention_mask),
               other.encode(batch.input_ids, batch.token_type_ids, batch.attention_mask), batch.attention_mask);
  }
  EXPECT_NEAR(r.sqnr_db, unmasked.result().sqnr_db, 1e-9);
  EXPECT_NEAR(r.mean_cosine, unmasked.result().mean_cosine, 1e-9);
  EXPECT_NE(r.sqnr_db, masked.result().sqnr_db);
  EXPECT_LT(r.mean_cosine, 0.99);  // two random models disagree
}

}  // namespace
}  // namespace bertforge
