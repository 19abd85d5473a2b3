// Argument checks shared by the ops.
#include "ops/op_checks.h"

namespace bertforge {

void check_dtype(const char* op, const char* arg, const Tensor& x, DType dtype) {
  BF_CHECK(x.defined(), op, ": ", arg, " is undefined");
  BF_CHECK(x.dtype() == dtype, op, ": ", arg, " must be ", dtype_name(dtype), ", got ", dtype_name(x.dtype()));
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  BF_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a.device().str(), " and ",
           b.device().str(), ")");
}

void check_dim(const char* op, const char* arg, const Tensor& x, int64_t ndim) {
  BF_CHECK(x.dim() == ndim, op, ": ", arg, " must be ", ndim, "-d, got ", x.shape_str());
}

void check_shape(const char* op, const char* arg, const Tensor& x, const Shape& expected) {
  BF_CHECK(x.shape() == expected, op, ": ", arg, " must have shape ", shape_to_string(expected), ", got ",
           x.shape_str());
}

}  // namespace bertforge
