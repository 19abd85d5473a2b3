// Check macros: the one way bertforge reports a broken precondition.
//
// Library code that reads user input (files, flags) returns absl::Status.
// Tensor-level preconditions (shape, dtype, device mismatches) are programming
// errors of the caller; they throw bertforge::Error carrying file:line and a
// message naming the op, so a test can EXPECT_THROW and a tool can print it
// and exit non-zero. Never an assert(): checks stay on in release builds.
#pragma once

#include <stdexcept>
#include <string>

#include "absl/strings/str_cat.h"

namespace bertforge {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void ThrowError(const char* file, int line, const std::string& msg);

}  // namespace bertforge

// BF_CHECK(cond, parts...) : throws "file:line: check failed: cond: parts".
#define BF_CHECK(cond, ...)                                                           \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      ::bertforge::ThrowError(__FILE__, __LINE__,                                     \
                              ::absl::StrCat("check failed: " #cond ": ", __VA_ARGS__)); \
    }                                                                                 \
  } while (0)

// BF_FAIL(parts...) : unconditional error.
#define BF_FAIL(...) ::bertforge::ThrowError(__FILE__, __LINE__, ::absl::StrCat(__VA_ARGS__))

// BF_RETURN_IF_ERROR(expr) : early return of a non-OK absl::Status.
#define BF_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status bf_status_ = (expr);      \
    if (!bf_status_.ok()) return bf_status_; \
  } while (0)

#define BF_CONCAT_INNER(a, b) a##b
#define BF_CONCAT(a, b) BF_CONCAT_INNER(a, b)
// BF_ASSIGN_OR_RETURN(lhs, expr) : unwraps an absl::StatusOr or returns its status.
#define BF_ASSIGN_OR_RETURN(lhs, expr) \
  BF_ASSIGN_OR_RETURN_IMPL(BF_CONCAT(bf_statusor_, __LINE__), lhs, expr)
#define BF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
