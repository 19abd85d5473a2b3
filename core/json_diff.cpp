// Leaf-by-leaf comparison of two JSON values.
#include "core/json_diff.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bertforge {
namespace {

constexpr char kAbsent[] = "(absent)";

std::string member_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : absl::StrCat(parent, ".", key);
}

void collect(const Json& before, const Json& after, const std::string& path, std::vector<JsonDifference>& out) {
  if (before == after) return;
  if (before.is_object() && after.is_object()) {
    for (const auto& [key, value] : before.as_object()) {
      const Json* other = after.get(key);
      if (other == nullptr) {
        out.push_back({member_path(path, key), value.dump(), kAbsent});
      } else {
        collect(value, *other, member_path(path, key), out);
      }
    }
    for (const auto& [key, value] : after.as_object()) {
      if (before.get(key) == nullptr) out.push_back({member_path(path, key), kAbsent, value.dump()});
    }
    return;
  }
  if (before.is_array() && after.is_array() && before.as_array().size() == after.as_array().size()) {
    for (size_t i = 0; i < before.as_array().size(); ++i) {
      collect(before.as_array()[i], after.as_array()[i], absl::StrCat(path, "[", i, "]"), out);
    }
    return;
  }
  out.push_back({path, before.dump(), after.dump()});
}

}  // namespace

std::vector<JsonDifference> json_differences(const Json& before, const Json& after) {
  std::vector<JsonDifference> out;
  collect(before, after, "", out);
  return out;
}

std::string describe_differences(const std::vector<JsonDifference>& differences) {
  return absl::StrJoin(differences, ", ", [](std::string* out, const JsonDifference& d) {
    absl::StrAppend(out, d.path.empty() ? "" : d.path + " ", d.before, " -> ", d.after);
  });
}

}  // namespace bertforge
