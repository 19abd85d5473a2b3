// Out-of-line part of the check macros (keeps the throw off the hot path).
#include "core/check.h"

namespace bertforge {

void ThrowError(const char* file, int line, const std::string& msg) {
  throw Error(absl::StrCat(file, ":", line, ": ", msg));
}

}  // namespace bertforge
