// The backward engine: runs the recorded graph in reverse topological order.
#pragma once

#include <functional>

#include "core/tensor.h"

namespace bertforge::autograd {

// Called during backward once per leaf reached from the root, as soon as that
// leaf's .grad is final for this call: every edge into it has delivered (with
// a gradient or without one). Data-parallel training reduces gradients from
// here while the rest of backward still runs.
using LeafGradientReadyFn = std::function<void(const AutogradMeta& leaf)>;

// Computes gradients of `root` with respect to every leaf that requires grad
// and adds them into the leaves' .grad (gradients accumulate across calls
// until the caller resets them). `grad_output` is dL/d(root); it may be
// omitted only when root has one element (then it is 1). The graph is freed
// as it is consumed unless `retain_graph`. `on_leaf_ready`, when given, is
// called for every leaf as above.
void backward(const Tensor& root, const Tensor& grad_output = Tensor(), bool retain_graph = false,
              const LeafGradientReadyFn& on_leaf_ready = nullptr);

// acc += grad for two contiguous tensors of the same shape, dtype and device.
// The engine uses it to sum gradients that reach a tensor through several
// uses; a device backend registers its own (the CPU one is built in).
using AccumulateFn = void (*)(Tensor& acc, const Tensor& grad);
void register_accumulate(DeviceType type, AccumulateFn fn);

}  // namespace bertforge::autograd
