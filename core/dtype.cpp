// Names and sizes of the element types.
#include "core/dtype.h"

#include "absl/strings/str_cat.h"

namespace bertforge {

int64_t dtype_size(DType dt) {
  return visit_dtype(dt, [](auto v) { return static_cast<int64_t>(sizeof(v)); });
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kF16: return "f16";
    case DType::kI8: return "i8";
    case DType::kU8: return "u8";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
  }
  return "invalid";
}

const char* dtype_safetensors_name(DType dt) {
  switch (dt) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
  }
  return "invalid";
}

absl::StatusOr<DType> dtype_from_safetensors_name(absl::string_view name) {
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16, DType::kI8, DType::kU8, DType::kI32,
                   DType::kI64}) {
    if (name == dtype_safetensors_name(dt)) return dt;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported dtype \"", name, "\" (expected F32, BF16, F16, I8, U8, I32 or I64)"));
}

bool dtype_is_floating(DType dt) {
  return dt == DType::kF32 || dt == DType::kBF16 || dt == DType::kF16;
}

}  // namespace bertforge
