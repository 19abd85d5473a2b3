// Tests for Json: parsing, serialization round trips, escapes, accessors,
// builders, and rejection of malformed input.
#include "core/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "core/check.h"

namespace bertforge {
namespace {

Json parse_ok(absl::string_view text) {
  absl::StatusOr<Json> result = Json::parse(text);
  EXPECT_TRUE(result.ok()) << text << ": " << result.status();
  return result.ok() ? *result : Json();
}

// Parses `text`, expecting failure whose message contains `fragment`.
void expect_rejected(absl::string_view text, absl::string_view fragment) {
  absl::StatusOr<Json> result = Json::parse(text);
  ASSERT_FALSE(result.ok()) << "accepted: " << text;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find(fragment), absl::string_view::npos)
      << "message \"" << result.status().message() << "\" lacks \"" << fragment << "\" for input " << text;
}

TEST(Json, ParsesScalars) {
  EXPECT_TRUE(parse_ok("null").is_null());
  EXPECT_TRUE(parse_ok("true").as_bool());
  EXPECT_FALSE(parse_ok(" false ").as_bool());
  EXPECT_EQ(parse_ok("-12.5e1").as_number(), -125.0);
  EXPECT_EQ(parse_ok("0").as_int64(), 0);
  EXPECT_EQ(parse_ok("1E3").as_int64(), 1000);
  EXPECT_EQ(parse_ok("\"hi\"").as_string(), "hi");
}

TEST(Json, ParsesNestedStructuresInOrder) {
  const Json j = parse_ok(R"({"z": [1, 2, {"a": null}], "b": {"c": "d"}, "a": true})");
  ASSERT_TRUE(j.is_object());
  const Json::Object& members = j.as_object();
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].first, "z");  // insertion order kept, not sorted
  EXPECT_EQ(members[1].first, "b");
  EXPECT_EQ(members[2].first, "a");
  EXPECT_EQ(j.get("z")->as_array().size(), 3u);
  EXPECT_TRUE(j.get("z")->as_array()[2].get("a")->is_null());
  EXPECT_EQ(j.get("b")->get("c")->as_string(), "d");
  EXPECT_EQ(j.get("missing"), nullptr);
  EXPECT_EQ(j.get("a")->get("x"), nullptr);  // get on a non-object
}

TEST(Json, StringEscapes) {
  EXPECT_EQ(parse_ok(R"("a\"b\\c\/d\b\f\n\r\t")").as_string(), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(parse_ok(R"("\u0041\u00e9\u20ac")").as_string(), "A\xC3\xA9\xE2\x82\xAC");  // A é €
  EXPECT_EQ(parse_ok(R"("\ud83d\ude00")").as_string(), "\xF0\x9F\x98\x80");             // U+1F600
  EXPECT_EQ(parse_ok(R"("\u0000")").as_string(), std::string(1, '\0'));
  EXPECT_EQ(parse_ok("\"\xE2\x82\xAC raw\"").as_string(), "\xE2\x82\xAC raw");  // raw UTF-8 passes through
}

TEST(Json, DumpCompactAndIndented) {
  Json j = Json::object();
  j.set("name", "bert").set("layers", 12).set("eps", 1e-12).set("tags", Json::array());
  Json list = Json::array();
  list.push_back(1).push_back(2.5).push_back(nullptr).push_back(false);
  j.set("list", list);
  EXPECT_EQ(j.dump(), R"({"name":"bert","layers":12,"eps":1e-12,"tags":[],"list":[1,2.5,null,false]})");
  EXPECT_EQ(j.dump(2),
            "{\n"
            "  \"name\": \"bert\",\n"
            "  \"layers\": 12,\n"
            "  \"eps\": 1e-12,\n"
            "  \"tags\": [],\n"
            "  \"list\": [\n"
            "    1,\n"
            "    2.5,\n"
            "    null,\n"
            "    false\n"
            "  ]\n"
            "}");
}

TEST(Json, SetReplacesInPlace) {
  Json j = Json::object();
  j.set("a", 1).set("b", 2).set("a", 3);
  EXPECT_EQ(j.dump(), R"({"a":3,"b":2})");
}

TEST(Json, NumbersRoundTrip) {
  for (double x : {0.1, -1.0 / 3.0, 1e-300, 5e-324, 1.7976931348623157e308, 123456789012345678.0, 2.5e-7,
                   -0.0, 4503599627370497.0}) {
    const std::string text = Json(x).dump();
    EXPECT_EQ(parse_ok(text).as_number(), x) << text;
  }
  EXPECT_EQ(Json(42).dump(), "42");
  EXPECT_EQ(Json(-7.0).dump(), "-7");
  EXPECT_EQ(Json(int64_t{1} << 53).dump(), "9007199254740992");
  EXPECT_EQ(Json(0.1).dump(), "0.1");
  EXPECT_EQ(Json(std::nan("")).dump(), "null");
  EXPECT_EQ(Json(std::numeric_limits<double>::infinity()).dump(), "null");
}

TEST(Json, StringsRoundTrip) {
  const std::string tricky = std::string("quote\" backslash\\ newline\n tab\t bell\x07 nul") + '\0' +
                             " euro\xE2\x82\xAC emoji\xF0\x9F\x98\x80";
  const std::string text = Json(tricky).dump();
  EXPECT_EQ(text.find('\n'), std::string::npos);  // control characters are escaped
  EXPECT_NE(text.find("\\u0007"), std::string::npos);
  EXPECT_EQ(parse_ok(text).as_string(), tricky);
}

TEST(Json, DocumentRoundTrip) {
  const std::string text =
      R"({"a":[1,2,[3,[4,{}]]],"b":{"c":"\u00e9","d":[]},"e":-0.5,"f":true,"g":null,"h":"x\ny"})";
  const Json j = parse_ok(text);
  EXPECT_EQ(parse_ok(j.dump()), j);
  EXPECT_EQ(parse_ok(j.dump(4)), j);
  EXPECT_EQ(j.dump(), R"({"a":[1,2,[3,[4,{}]]],"b":{"c":"é","d":[]},"e":-0.5,"f":true,"g":null,"h":"x\ny"})");
}

TEST(Json, Int64Checks) {
  EXPECT_TRUE(parse_ok("9007199254740992").is_int64());
  EXPECT_FALSE(parse_ok("1.5").is_int64());
  EXPECT_FALSE(parse_ok("1e19").is_int64());
  EXPECT_FALSE(parse_ok("\"3\"").is_int64());
  EXPECT_EQ(parse_ok("-3").as_int64(), -3);
  EXPECT_THROW(parse_ok("1.5").as_int64(), Error);
}

TEST(Json, WrongTypeAccessThrows) {
  const Json j = parse_ok("[1]");
  EXPECT_THROW(j.as_string(), Error);
  EXPECT_THROW(j.as_object(), Error);
  EXPECT_THROW(j.as_bool(), Error);
  EXPECT_THROW(j.as_number(), Error);
  Json number(1.0);
  EXPECT_THROW(number.set("a", 1), Error);
  EXPECT_THROW(number.push_back(1), Error);
}

TEST(Json, RejectsMalformedInput) {
  expect_rejected("", "unexpected end of input");
  expect_rejected("   ", "unexpected end of input");
  expect_rejected("[1, 2,]", "expected a value");
  expect_rejected(R"({"a": 1,})", "expected a string key");
  expect_rejected(R"({"a" 1})", "expected ':'");
  expect_rejected(R"({"a": 1 "b": 2})", "expected ',' or '}'");
  expect_rejected("[1 2]", "expected ',' or ']'");
  expect_rejected("{1: 2}", "expected a string key");
  expect_rejected("{'a': 1}", "expected a string key");
  expect_rejected(R"("abc)", "unterminated string");
  expect_rejected(R"(["abc\)", "unterminated string");
  expect_rejected(R"("\x")", "invalid escape");
  expect_rejected(R"("\u12")", "\\u escape");
  expect_rejected(R"("\u12G4")", "invalid hex digit");
  expect_rejected(R"("\ud800")", "high surrogate");
  expect_rejected(R"("\ud800\u0041")", "low surrogate");
  expect_rejected(R"("\udc00")", "lone low surrogate");
  expect_rejected("\"a\nb\"", "control character");
  expect_rejected("\"\xC3\"", "invalid UTF-8");
  expect_rejected("\"\xC0\xAF\"", "invalid UTF-8");      // overlong '/'
  expect_rejected("\"\xED\xA0\x80\"", "invalid UTF-8");  // encoded surrogate
  expect_rejected("\"\xF4\x90\x80\x80\"", "invalid UTF-8");  // above U+10FFFF
  expect_rejected("1 2", "unexpected data after the JSON value");
  expect_rejected("{} x", "unexpected data after the JSON value");
  expect_rejected("tru", "invalid literal");
  expect_rejected("nul", "invalid literal");
  expect_rejected("True", "unexpected character");
  expect_rejected("NaN", "unexpected character");
  expect_rejected("01", "leading zero");
  expect_rejected("-", "expected a digit");
  expect_rejected("1.", "expected a digit after '.'");
  expect_rejected(".5", "unexpected character");
  expect_rejected("+1", "unexpected character");
  expect_rejected("1e", "expected a digit in the exponent");
  expect_rejected("1e400", "out of the range");
  expect_rejected("// comment\n1", "unexpected character");
  expect_rejected(R"({"a": 1, "b": 2, "a": 3})", "duplicate key \"a\"");
}

TEST(Json, ErrorsGiveTheByteOffset) {
  absl::StatusOr<Json> result = Json::parse(R"({"a": [1, 2,]})");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("at byte 12"), absl::string_view::npos) << result.status();
}

TEST(Json, NestingDepthLimit) {
  const int limit = Json::kMaxDepth;
  const std::string ok = std::string(limit, '[') + std::string(limit, ']');
  EXPECT_TRUE(Json::parse(ok).ok());
  const std::string too_deep = std::string(limit + 1, '[') + std::string(limit + 1, ']');
  expect_rejected(too_deep, "nesting deeper than 256");
  std::string deep_objects;
  for (int k = 0; k <= limit; ++k) deep_objects += "{\"a\":";
  deep_objects += "1" + std::string(limit + 1, '}');
  expect_rejected(deep_objects, "nesting deeper than 256");
  // Far deeper input fails cleanly instead of overflowing the stack.
  expect_rejected(std::string(1000000, '['), "nesting deeper than 256");
}

}  // namespace
}  // namespace bertforge
