// json_differences finds exactly the leaves that changed, with their paths.
#include "core/json_diff.h"

#include <gtest/gtest.h>

namespace bertforge {
namespace {

Json parse(const char* text) { return *Json::parse(text); }

TEST(JsonDiff, EqualValuesHaveNoDifferences) {
  const Json a = parse(R"({"model": {"hidden_size": 128, "layers": [1, 2]}, "seed": "7"})");
  EXPECT_TRUE(json_differences(a, a).empty());
}

TEST(JsonDiff, NamesEveryChangedLeafByItsPath) {
  const Json before = parse(R"({"model": {"hidden_size": 128, "heads": 2, "gone": true}, "seq_len": 64,
                                "layers": [1, 2, 3]})");
  const Json after = parse(R"({"model": {"hidden_size": 256, "heads": 2, "new": null}, "seq_len": 64,
                               "layers": [1, 5, 3]})");
  const std::vector<JsonDifference> d = json_differences(before, after);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].path, "model.hidden_size");
  EXPECT_EQ(d[0].before, "128");
  EXPECT_EQ(d[0].after, "256");
  EXPECT_EQ(d[1].path, "model.gone");
  EXPECT_EQ(d[1].after, "(absent)");
  EXPECT_EQ(d[2].path, "model.new");
  EXPECT_EQ(d[2].before, "(absent)");
  EXPECT_EQ(d[3].path, "layers[1]");
  EXPECT_EQ(describe_differences(d),
            "model.hidden_size 128 -> 256, model.gone true -> (absent), model.new (absent) -> null, layers[1] 2 -> 5");
}

TEST(JsonDiff, ArraysOfDifferentLengthOrDifferentTypesDifferAsAWhole) {
  std::vector<JsonDifference> d = json_differences(parse("[1, 2]"), parse("[1, 2, 3]"));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].path, "");
  EXPECT_EQ(describe_differences(d), "[1,2] -> [1,2,3]");
  d = json_differences(parse(R"({"a": "1"})"), parse(R"({"a": 1})"));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].before, "\"1\"");
}

}  // namespace
}  // namespace bertforge
