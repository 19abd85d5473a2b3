// core/vector_isa.h: which paths count as supported (cpuid's own answer), and that the default is the widest of them.
#include "core/vector_isa.h"

#include <gtest/gtest.h>

#include <string>

namespace bertforge {
namespace {

TEST(VectorIsa, SupportedIsWhatTheCpuReports) {
  EXPECT_TRUE(vector_isa_supported(VectorIsa::kScalar));
#if defined(__x86_64__)
  EXPECT_EQ(vector_isa_supported(VectorIsa::kAvx2), __builtin_cpu_supports("avx2") != 0);
  EXPECT_EQ(vector_isa_supported(VectorIsa::kAvx512), __builtin_cpu_supports("avx512f") != 0);
#else
  EXPECT_FALSE(vector_isa_supported(VectorIsa::kAvx2));
  EXPECT_FALSE(vector_isa_supported(VectorIsa::kAvx512));
#endif
}

TEST(VectorIsa, TheDefaultIsTheWidestSupportedPath) {
  const VectorIsa expected = vector_isa_supported(VectorIsa::kAvx512) ? VectorIsa::kAvx512
                             : vector_isa_supported(VectorIsa::kAvx2) ? VectorIsa::kAvx2
                                                                      : VectorIsa::kScalar;
  EXPECT_EQ(default_vector_isa(), expected);
}

TEST(VectorIsa, Names) {
  EXPECT_EQ(std::string(vector_isa_name(VectorIsa::kScalar)), "scalar");
  EXPECT_EQ(std::string(vector_isa_name(VectorIsa::kAvx2)), "avx2");
  EXPECT_EQ(std::string(vector_isa_name(VectorIsa::kAvx512)), "avx512");
}

}  // namespace
}  // namespace bertforge
