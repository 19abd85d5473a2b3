// Tests for quant/quant_scheme.h: code ranges in closed form, the JSON round trip, and one rejected document per
// kind of mistake.
#include "quant/quant_scheme.h"

#include <gtest/gtest.h>

#include <string>

#include "core/json.h"

namespace bertforge::quant {
namespace {

QuantScheme make(int bits, bool symmetric, Granularity g, int64_t group = 128) { return {bits, symmetric, g, group}; }

TEST(QuantScheme, RangesAreTheClosedForms) {
  for (int b = QuantScheme::kMinBits; b <= QuantScheme::kMaxBits; ++b) {
    const QuantScheme sym = make(b, true, Granularity::kPerChannel);
    const QuantScheme asym = make(b, false, Granularity::kPerChannel);
    int pow_b = 1;
    for (int i = 0; i < b; ++i) pow_b *= 2;
    EXPECT_EQ(sym.qmax(), pow_b / 2 - 1) << b;
    EXPECT_EQ(sym.qmin(), -(pow_b / 2 - 1)) << b;
    EXPECT_EQ(asym.qmin(), 0) << b;
    EXPECT_EQ(asym.qmax(), pow_b - 1) << b;
    EXPECT_EQ(sym.packed(), b <= 4) << b;
  }
  EXPECT_EQ(int8_per_channel().qmax(), 127);
  EXPECT_EQ(int8_per_channel().qmin(), -127);  // -128 stays unused
}

TEST(QuantScheme, JsonRoundTripsEveryScheme) {
  for (int b = 2; b <= 8; ++b) {
    for (bool symmetric : {true, false}) {
      for (Granularity g : {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup}) {
        const QuantScheme s = make(b, symmetric, g, 64);
        ASSERT_TRUE(s.validate().ok()) << s.str();
        const std::string text = s.to_json().dump();
        absl::StatusOr<Json> parsed = Json::parse(text);
        ASSERT_TRUE(parsed.ok());
        absl::StatusOr<QuantScheme> back = QuantScheme::from_json(*parsed);
        ASSERT_TRUE(back.ok()) << back.status() << " for " << text;
        EXPECT_EQ(*back, s) << text;
        EXPECT_EQ(back->group_size == 64, g == Granularity::kPerGroup) << text;
      }
    }
  }
  EXPECT_EQ(int4_per_group().to_json().dump(),
            R"({"bits":4,"symmetric":false,"granularity":"per_group","group_size":128})");
  EXPECT_EQ(int4_per_group(32, true).str(), "int4 symmetric per_group(32)");
}

// Each document is rejected with a message containing the given fragment.
TEST(QuantScheme, RejectsBadDocuments) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"bits":9,"symmetric":true,"granularity":"per_channel"})", "bits 9 out of range"},
      {R"({"bits":1,"symmetric":true,"granularity":"per_channel"})", "bits 1 out of range"},
      {R"({"bits":4.5,"symmetric":true,"granularity":"per_channel"})", "integer \"bits\""},
      {R"({"symmetric":true,"granularity":"per_channel"})", "integer \"bits\""},
      {R"({"bits":8,"symmetric":"yes","granularity":"per_channel"})", "boolean \"symmetric\""},
      {R"({"bits":8,"symmetric":true,"granularity":"per_block"})", "unknown quantization granularity \"per_block\""},
      {R"({"bits":8,"symmetric":true})", "string \"granularity\""},
      {R"({"bits":4,"symmetric":true,"granularity":"per_group"})", "needs an integer \"group_size\""},
      {R"({"bits":4,"symmetric":true,"granularity":"per_group","group_size":0})", "group_size 0 must be >= 1"},
      {R"({"bits":8,"symmetric":true,"granularity":"per_channel","group_size":128})", "\"group_size\" given"},
      {R"({"bits":8,"symmetric":true,"granularity":"per_channel","zero":1})", "unknown key \"zero\""},
      {R"([8,true])", "not a JSON object"},
  };
  for (const auto& [text, fragment] : cases) {
    absl::StatusOr<Json> json = Json::parse(text);
    ASSERT_TRUE(json.ok()) << text;
    absl::StatusOr<QuantScheme> s = QuantScheme::from_json(*json);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(std::string(s.status().message()).find(fragment), std::string::npos)
        << text << " -> " << s.status().message();
  }
}

TEST(QuantScheme, ValidateChecksBitsAndGroupSize) {
  EXPECT_FALSE(make(0, true, Granularity::kPerTensor).validate().ok());
  EXPECT_FALSE(make(16, false, Granularity::kPerTensor).validate().ok());
  EXPECT_FALSE(make(4, false, Granularity::kPerGroup, -1).validate().ok());
  EXPECT_TRUE(make(4, false, Granularity::kPerChannel, -1).validate().ok());  // group_size unused there
}

}  // namespace
}  // namespace bertforge::quant
