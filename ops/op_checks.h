// Argument checks shared by the ops: each names the op and the offending tensor.
#pragma once

#include "core/tensor.h"

namespace bertforge {

// x is defined, f32 (or `dtype`), and on `device` when given.
void check_dtype(const char* op, const char* arg, const Tensor& x, DType dtype = DType::kF32);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_dim(const char* op, const char* arg, const Tensor& x, int64_t ndim);
void check_shape(const char* op, const char* arg, const Tensor& x, const Shape& expected);

}  // namespace bertforge
