// The fixture of the tests that run a hand-vectorised loop on every path of core/vector_isa.h: each path this CPU
// has runs, the others skip with the reason; GoogleTest names each test, and prints each parameter, by its path.
//
//   class MyLoopTest : public VectorIsaPathTest {};
//   TEST_P(MyLoopTest, EqualsTheScalarReference) { my_loop(GetParam(), ...); }
//   INSTANTIATE_VECTOR_ISA_PATHS(MyLoopTest);
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "core/vector_isa.h"

namespace bertforge {

inline void PrintTo(VectorIsa isa, std::ostream* os) { *os << vector_isa_name(isa); }

class VectorIsaPathTest : public ::testing::TestWithParam<VectorIsa> {
 protected:
  void SetUp() override {
    if (!vector_isa_supported(GetParam())) {
      GTEST_SKIP() << vector_isa_name(GetParam()) << " is not available on this CPU (compiled, not executed)";
    }
  }
};

#define INSTANTIATE_VECTOR_ISA_PATHS(fixture)                                                                    \
  INSTANTIATE_TEST_SUITE_P(AllPaths, fixture,                                                                    \
                           ::testing::Values(::bertforge::VectorIsa::kScalar, ::bertforge::VectorIsa::kAvx2,    \
                                             ::bertforge::VectorIsa::kAvx512),                                   \
                           [](const ::testing::TestParamInfo<::bertforge::VectorIsa>& info) {                   \
                             return std::string(::bertforge::vector_isa_name(info.param));                       \
                           })

}  // namespace bertforge
