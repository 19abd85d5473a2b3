// quant/reference_comparison.h on a small random BERT: its hidden-state agreement is compare_hidden_states's to
// the last digit (same batches, same unmasked text), a model against itself is exact, both models are timed on
// the same tokens, the loader's position and the models' training modes are restored.
#include "quant/reference_comparison.h"

#include <gtest/gtest.h>

#include <limits>

#include "tests/support/synthetic_bert.h"
#include "train/evaluation.h"

namespace bertforge::quant {
namespace {

using test_support::SyntheticBertTest;

class ReferenceComparisonTest : public SyntheticBertTest {
 protected:
  ReferenceComparisonTest() : SyntheticBertTest("reference_comparison") {}
};

TEST_F(ReferenceComparisonTest, AgreementIsCompareHiddenStatesOnTheSameBatches) {
  BertForMaskedLM other(config(), /*init_seed=*/6);
  DataLoader validation = loader("validation.zst", /*shuffle=*/false);
  const HiddenStateAgreement expected = compare_hidden_states(*model_, other, validation, /*max_batches=*/2);
  const LoaderPosition before = validation.position();
  const ReferenceComparison c = compare_with_reference(*model_, other, validation, /*max_batches=*/2);
  EXPECT_EQ(c.hidden.sqnr_db, expected.sqnr_db);
  EXPECT_EQ(c.hidden.mean_cosine, expected.mean_cosine);
  EXPECT_EQ(c.hidden.tokens, expected.tokens);
  EXPECT_EQ(c.hidden.batches, 2);
  EXPECT_LT(c.hidden.mean_cosine, 0.99);  // two random models disagree
  EXPECT_EQ(validation.position().to_json().dump(), before.to_json().dump());
  EXPECT_FALSE(model_->is_training());  // modes restored: the fixture's model is in eval mode, `other` training
  EXPECT_TRUE(other.is_training());
}

TEST_F(ReferenceComparisonTest, TimesBothModelsOnTheSameTokens) {
  DataLoader validation = loader("validation.zst", /*shuffle=*/false);
  const ReferenceComparison c = compare_with_reference(*model_, *model_, validation, /*max_batches=*/0);
  EXPECT_EQ(c.hidden.sqnr_db, std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(c.hidden.mean_cosine, 1.0);
  EXPECT_EQ(c.hidden.batches, validation.batches_per_epoch());
  ASSERT_GT(c.hidden.tokens, 0);
  EXPECT_GT(c.model_seconds, 0);
  EXPECT_GT(c.reference_seconds, 0);
  EXPECT_DOUBLE_EQ(c.model_tokens_per_s(), c.hidden.tokens / c.model_seconds);
  EXPECT_DOUBLE_EQ(c.reference_tokens_per_s(), c.hidden.tokens / c.reference_seconds);
  EXPECT_DOUBLE_EQ(c.speedup(), c.reference_seconds / c.model_seconds);
}

}  // namespace
}  // namespace bertforge::quant
