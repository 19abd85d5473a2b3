// core/vector_isa.cpp — which vector paths this CPU runs (see vector_isa.h).
#include "core/vector_isa.h"

namespace bertforge {

const char* vector_isa_name(VectorIsa isa) {
  switch (isa) {
    case VectorIsa::kScalar: return "scalar";
    case VectorIsa::kAvx2: return "avx2";
    case VectorIsa::kAvx512: return "avx512";
  }
  return "unknown";
}

bool vector_isa_supported(VectorIsa isa) {
  switch (isa) {
    case VectorIsa::kScalar: return true;
#if defined(__x86_64__)
    case VectorIsa::kAvx2: return __builtin_cpu_supports("avx2");
    case VectorIsa::kAvx512: return __builtin_cpu_supports("avx512f");
#endif
    default: return false;
  }
}

VectorIsa default_vector_isa() {
  static const VectorIsa isa = vector_isa_supported(VectorIsa::kAvx512) ? VectorIsa::kAvx512
                               : vector_isa_supported(VectorIsa::kAvx2) ? VectorIsa::kAvx2
                                                                        : VectorIsa::kScalar;
  return isa;
}

}  // namespace bertforge
