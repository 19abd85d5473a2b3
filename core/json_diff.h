// json_differences: where two JSON values differ, leaf by leaf, for error messages that say what changed
// ("model.hidden_size: 128 -> 256") instead of printing both values whole.
#pragma once

#include <string>
#include <vector>

#include "core/json.h"

namespace bertforge {

struct JsonDifference {
  std::string path;    // "model.hidden_size", "layers[2]", or "" for the roots themselves
  std::string before;  // the value in `before`, compact JSON, or "(absent)"
  std::string after;   // the same for `after`
};

// Objects are compared member by member (in `before`'s order, then members only `after` has), arrays of equal
// length element by element; any other pair of unequal values is one difference at its path.
std::vector<JsonDifference> json_differences(const Json& before, const Json& after);

// "model.hidden_size 128 -> 256, seed \"1\" -> \"2\"": the differences joined for a message.
std::string describe_differences(const std::vector<JsonDifference>& differences);

}  // namespace bertforge
