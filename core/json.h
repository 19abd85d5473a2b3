// Json: a small JSON value (RFC 8259) for safetensors headers, config files
// and JSONL metrics.
//
// A value is null, a bool, a number (a double, so integers are exact up to
// 2^53), a string (UTF-8), an array, or an object. Objects keep their members
// in insertion order (a vector of pairs: lookup is linear, which suits the
// small objects JSON files hold) and the parser rejects duplicate keys.
//
// Parsing is strict: no comments, trailing commas, single quotes, NaN, leading
// zeros or invalid UTF-8; lone surrogates in \u escapes are rejected; nesting
// deeper than kMaxDepth is rejected. Errors give the byte offset.
// Accessors (as_string(), as_int64(), ...) on the wrong type are programming
// errors and throw; code reading untrusted input checks is_...() first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bertforge {

class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  static constexpr int kMaxDepth = 256;

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : value_(b) {}
  Json(double x) : value_(x) {}
  template <typename Int, std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>, int> = 0>
  Json(Int x) : value_(static_cast<double>(x)) {}
  Json(const char* s) : value_(std::string(s)) {}
  Json(std::string s) : value_(std::move(s)) {}
  Json(absl::string_view s) : value_(std::string(s)) {}
  Json(Array a) : value_(std::move(a)) {}
  Json(Object o) : value_(std::move(o)) {}
  static Json array() { return Json(Array{}); }
  static Json object() { return Json(Object{}); }

  static absl::StatusOr<Json> parse(absl::string_view text);
  // Compact ({"a":1,"b":[true,null]}) when indent < 0; otherwise one member
  // or element per line, indented by `indent` spaces per level. Integral
  // numbers print without a decimal point, others in the shortest form that
  // reads back to the same double; NaN and infinities print as null.
  std::string dump(int indent = -1) const;

  Type type() const { return static_cast<Type>(value_.index()); }
  bool is_null() const { return type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_number() const { return type() == Type::kNumber; }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }
  // A number with no fractional part in [-2^63, 2^63).
  bool is_int64() const;

  bool as_bool() const;
  double as_number() const;
  int64_t as_int64() const;  // throws unless is_int64()
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;

  // The member named `key`, or nullptr if absent or this is not an object.
  const Json* get(absl::string_view key) const;
  // Object builder: replaces the member `key` in place, or appends it.
  Json& set(std::string key, Json value);
  // Array builder.
  Json& push_back(Json value);

  bool operator==(const Json& other) const { return value_ == other.value_; }
  bool operator!=(const Json& other) const { return !(*this == other); }

 private:
  void dump_to(std::string& out, int indent, int depth) const;

  // Alternatives in the order of Type.
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> value_;
};

}  // namespace bertforge
