// AutocastGuard, autocast() and what ops keep for backward under it (see autocast.h); matmul reads
// autocast_dtype().
#include "ops/autocast.h"

#include "autograd/node.h"

namespace bertforge {
namespace {

thread_local DType current_autocast_dtype = DType::kF32;

}  // namespace

AutocastGuard::AutocastGuard(DType dtype) : previous_(current_autocast_dtype) {
  BF_CHECK(dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kF16,
           "AutocastGuard: bf16, f16 or f32 (off), got ", dtype_name(dtype));
  current_autocast_dtype = dtype;
}

AutocastGuard::~AutocastGuard() { current_autocast_dtype = previous_; }

DType autocast_dtype() { return current_autocast_dtype; }

Tensor autocast(const Tensor& x) {
  const DType dtype = autocast_dtype();
  if (dtype == DType::kF32 || x.dtype() != DType::kF32) return x;
  // The gradient of the rounded tensor arrives in FP32 (matmul's gradients are FP32) and passes straight through.
  return autograd::record("autocast", x.detach().to(dtype), {x},
                          [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor kept_for_backward(const Tensor& x) {
  const DType dtype = autocast_dtype();
  return dtype == DType::kF32 || x.dtype() != DType::kF32 ? x.detach() : x.detach().to(dtype);
}

Tensor widened_for_backward(const Tensor& kept) { return kept.to(DType::kF32); }

}  // namespace bertforge
