// Element types of a Tensor, their sizes and names, and the dtype visitor.
//
// visit_dtype(dt, fn) calls fn with a value of the C++ type behind `dt`
// (fn(float{}), fn(int64_t{}), ...): the one switch over dtypes that the rest
// of the code reuses instead of writing its own.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "core/check.h"
#include "core/half.h"

namespace bertforge {

enum class DType : uint8_t { kF32, kBF16, kF16, kI8, kU8, kI32, kI64 };

// Bytes per element.
int64_t dtype_size(DType dt);
// Short lowercase name used in messages: "f32", "bf16", ...
const char* dtype_name(DType dt);
// The safetensors spelling: "F32", "BF16", "F16", "I8", "U8", "I32", "I64".
const char* dtype_safetensors_name(DType dt);
absl::StatusOr<DType> dtype_from_safetensors_name(absl::string_view name);
bool dtype_is_floating(DType dt);

template <typename T>
struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <> struct DTypeOf<bf16> { static constexpr DType value = DType::kBF16; };
template <> struct DTypeOf<f16> { static constexpr DType value = DType::kF16; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::kI8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kU8; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kI32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kI64; };

template <typename Fn>
decltype(auto) visit_dtype(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::kF32: return fn(float{});
    case DType::kBF16: return fn(bf16{});
    case DType::kF16: return fn(f16{});
    case DType::kI8: return fn(int8_t{});
    case DType::kU8: return fn(uint8_t{});
    case DType::kI32: return fn(int32_t{});
    case DType::kI64: return fn(int64_t{});
  }
  BF_FAIL("visit_dtype: invalid dtype ", static_cast<int>(dt));
}

// Value conversions between any element type and float/double.
template <typename T>
inline float to_float(T v) { return static_cast<float>(v); }
template <> inline float to_float<bf16>(bf16 v) { return Bf16ToFloat(v); }
template <> inline float to_float<f16>(f16 v) { return F16ToFloat(v); }

template <typename T>
inline T from_float(float v) { return static_cast<T>(v); }
template <> inline bf16 from_float<bf16>(float v) { return FloatToBf16(v); }
template <> inline f16 from_float<f16>(float v) { return FloatToF16(v); }

}  // namespace bertforge
