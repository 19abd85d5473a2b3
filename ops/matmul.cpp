// matmul and linear: forward and backward side by side.
//
// Operands are FP32, or 16-bit (bf16 or f16) with an FP32 result: under an AutocastGuard (ops/autocast.h) FP32
// operands are rounded to the guard's type first, and backward rounds G to the type of the operands it kept.
//
// Backward of C = op(A) op(B) is two more products. With G = dL/dC:
//   C = A B      : dA = G B^T     dB = A^T G
//   C = A B^T    : dA = G B       dB = G^T A
//   C = A^T B    : dA = B G^T     dB = A G
//   C = A^T B^T  : dA = B^T G^T   dB = G^T A^T
#include "ops/matmul.h"

#include "autograd/node.h"
#include "ops/autocast.h"
#include "ops/cpu/gemm.h"
#include "ops/elementwise.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"
#include "ops/reduce.h"

namespace bertforge::cpu {

// The CPU GEMMs (ops/cpu/gemm.h), in the registry (ops/kernels.h). The CUDA ones call cuBLAS (cuda/gemm.cpp).
BF_REGISTER_KERNEL(DeviceType::kCPU, gemm_strided_batched);
BF_REGISTER_KERNEL(DeviceType::kCPU, gemm_strided_batched_16);

}  // namespace bertforge::cpu

namespace bertforge {
namespace {

// The product itself, not recorded. a, b contiguous, both f32 or both of one 16-bit type; the result is f32.
Tensor matmul_raw(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  BF_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands must be at least 2-d, got ", a.shape_str(), " and ",
           b.shape_str());
  const bool shared_b = b.dim() == 2 && a.dim() > 2;
  if (shared_b && !trans_a) {
    // (..., M, K) @ (K, N): one big GEMM over all rows of a.
    const Tensor a2 = a.reshape({-1, a.size(-1)});
    Tensor out = matmul_raw(a2, b, false, trans_b);
    Shape shape = a.shape();
    shape.back() = out.size(-1);
    return out.view(shape);
  }
  BF_CHECK(a.dim() == b.dim(), "matmul: batch dims of ", a.shape_str(), " and ", b.shape_str(), " differ");
  Shape batch_shape(a.shape().begin(), a.shape().end() - 2);
  BF_CHECK(batch_shape == Shape(b.shape().begin(), b.shape().end() - 2), "matmul: batch dims of ", a.shape_str(),
           " and ", b.shape_str(), " differ");
  const int64_t M = trans_a ? a.size(-1) : a.size(-2), K = trans_a ? a.size(-2) : a.size(-1);
  const int64_t N = trans_b ? b.size(-2) : b.size(-1), Kb = trans_b ? b.size(-1) : b.size(-2);
  BF_CHECK(K == Kb, "matmul: inner dims differ: ", a.shape_str(), (trans_a ? "^T" : ""), " @ ", b.shape_str(),
           (trans_b ? "^T" : ""));
  const int64_t batch = shape_numel(batch_shape);
  Shape out_shape = batch_shape;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, DType::kF32, a.device());
  if (a.dtype() == DType::kF32) {
    BF_KERNEL(a.device(), gemm_strided_batched)
    (trans_a, trans_b, M, N, K, 1.0f, a.data<float>(), a.size(-1), M * K, b.data<float>(), b.size(-1), K * N,
     0.0f, out.data<float>(), N, M * N, batch);
  } else {
    BF_KERNEL(a.device(), gemm_strided_batched_16)
    (a.dtype(), trans_a, trans_b, M, N, K, 1.0f, a.raw_data(), a.size(-1), M * K, b.raw_data(), b.size(-1), K * N,
     0.0f, out.data<float>(), N, M * N, batch);
  }
  return out;
}

bool is_16_bit(DType dtype) { return dtype == DType::kBF16 || dtype == DType::kF16; }

// The type both operands are multiplied in: the autocast type when a guard is active (16-bit operands must
// already have it), else their common type.
DType operand_dtype(const Tensor& a, const Tensor& b) {
  for (const Tensor* x : {&a, &b}) {
    BF_CHECK(x->dtype() == DType::kF32 || is_16_bit(x->dtype()), "matmul: operands must be f32, bf16 or f16, got ",
             dtype_name(x->dtype()));
  }
  const DType autocast = autocast_dtype();
  if (autocast != DType::kF32) {
    for (const Tensor* x : {&a, &b}) {
      BF_CHECK(x->dtype() == DType::kF32 || x->dtype() == autocast, "matmul: a ", dtype_name(x->dtype()),
               " operand under ", dtype_name(autocast), " autocasting");
    }
    return autocast;
  }
  BF_CHECK(a.dtype() == b.dtype(), "matmul: operands of types ", dtype_name(a.dtype()), " and ",
           dtype_name(b.dtype()), " (convert one, or autocast)");
  return a.dtype();
}

// x contiguous and of type dtype.
Tensor as_operand(const Tensor& x, DType dtype) { return x.dtype() == dtype ? x.contiguous() : x.to(dtype); }

// What backward keeps of an operand: when it was rounded, the 16-bit copy of an activation (whose FP32 original
// may then be freed), but the FP32 original of a leaf such as a weight, which lives on anyway: backward rounds
// it again, rather than holding a second copy of every weight until backward.
Tensor operand_for_backward(const Tensor& original, const Tensor& operand) {
  const AutogradMeta* meta = original.autograd_meta();
  const bool leaf = meta == nullptr || meta->grad_fn == nullptr;
  return leaf && original.dtype() != operand.dtype() ? original.detach() : operand.detach();
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_same_device("matmul", a, b);
  const DType dtype = operand_dtype(a, b);
  const Tensor ac = as_operand(a, dtype), bc = as_operand(b, dtype);
  Tensor out = matmul_raw(ac, bc, trans_a, trans_b);
  const bool need_da = autograd::requires_grad(a), need_db = autograd::requires_grad(b);
  return autograd::record(
      "matmul", out, {a, b},
      [a_kept = need_db ? operand_for_backward(a, ac) : Tensor(),
       b_kept = need_da ? operand_for_backward(b, bc) : Tensor(), trans_a, trans_b, dtype, a_shape = a.shape(),
       b_shape = b.shape()](const Tensor& g) {
        const Tensor gc = as_operand(g, dtype);
        const Tensor a = a_kept.defined() ? as_operand(a_kept, dtype) : Tensor();
        const Tensor b = b_kept.defined() ? as_operand(b_kept, dtype) : Tensor();
        Tensor da, db;
        if (b.defined()) {
          da = trans_a ? matmul_raw(b, gc, trans_b, true) : matmul_raw(gc, b, false, !trans_b);
        }
        if (a.defined()) {
          if (b_shape.size() == 2 && a_shape.size() > 2) {
            // A shared b gets the sum over every batch: flatten a and g to 2-D rows.
            const Tensor a2 = a.reshape({-1, a_shape.back()}), g2 = gc.reshape({-1, gc.size(-1)});
            db = trans_b ? matmul_raw(g2, a2, true, trans_a) : matmul_raw(a2, g2, !trans_a, false);
          } else {
            db = trans_b ? matmul_raw(gc, a, true, trans_a) : matmul_raw(a, gc, !trans_a, false);
          }
        }
        return std::vector<Tensor>{da, db};
      });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  BF_CHECK(weight.dim() == 2 && x.dim() >= 2 && x.size(-1) == weight.size(1), "linear: x ", x.shape_str(),
           " does not match weight ", weight.shape_str(), " (out, in)");
  Tensor y = matmul(x, weight, false, /*trans_b=*/true);
  if (bias.defined()) y = add_bias(y, bias);
  return y;
}

}  // namespace bertforge
