// The backward engine: runs the recorded graph in reverse topological order.
#pragma once

#include "core/tensor.h"

namespace bertforge::autograd {

// Computes gradients of `root` with respect to every leaf that requires grad
// and adds them into the leaves' .grad (gradients accumulate across calls
// until the caller resets them). `grad_output` is dL/d(root); it may be
// omitted only when root has one element (then it is 1). The graph is freed
// as it is consumed unless `retain_graph`.
void backward(const Tensor& root, const Tensor& grad_output = Tensor(), bool retain_graph = false);

// acc += grad for two contiguous tensors of the same shape, dtype and device.
// The engine uses it to sum gradients that reach a tensor through several
// uses; a device backend registers its own (the CPU one is built in).
using AccumulateFn = void (*)(Tensor& acc, const Tensor& grad);
void register_accumulate(DeviceType type, AccumulateFn fn);

}  // namespace bertforge::autograd
