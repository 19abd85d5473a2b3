// Helpers of the simulator kernel tests: a comparison of a CUDA kernel's output with the CPU's under a stated
// tolerance. (Each test declares the CPU kernels it compares with, with the types of their CUDA twins.)
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace bertforge::cuda_sim_test {

using test_support::random_values;

// |got[i] - want[i]| <= abs_tol + rel_tol * |want[i]| for every i (a NaN in got is a miss unless want is NaN
// too); names the first five misses.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rel_tol,
                         double abs_tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int misses = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]);
    const bool close = std::fabs(double{got[i]} - want[i]) <= abs_tol + rel_tol * std::fabs(double{want[i]});
    if (!both_nan && !close && ++misses <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: CUDA " << got[i] << ", CPU " << want[i];
    }
  }
  EXPECT_EQ(misses, 0) << what << ": " << misses << " of " << got.size() << " differ";
}

}  // namespace bertforge::cuda_sim_test
