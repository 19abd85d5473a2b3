// Node bookkeeping and graph recording.
#include "autograd/node.h"

#include "autograd/grad_mode.h"

namespace bertforge::autograd {

bool requires_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }

std::vector<Tensor> Node::apply(const Tensor& grad_output) {
  BF_CHECK(backward_ != nullptr, "backward through ", name_,
           " a second time: the graph is freed after the first backward");
  std::vector<Tensor> grads = backward_(grad_output);
  BF_CHECK(grads.size() == next_edges_.size(), name_, " backward returned ", grads.size(), " gradients for ",
           next_edges_.size(), " inputs");
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined() || !next_edges_[i].needs_grad()) continue;
    BF_CHECK(grads[i].shape() == next_edges_[i].shape, name_, " backward: gradient ", i, " has shape ",
             grads[i].shape_str(), ", input has ", shape_to_string(next_edges_[i].shape));
  }
  return grads;
}

void Node::release() {
  backward_ = nullptr;
  next_edges_.clear();
}

Tensor record(const char* name, Tensor output, const std::vector<Tensor>& inputs, Node::BackwardFn backward) {
  if (!GradMode::is_enabled()) return output;
  bool any = false;
  for (const Tensor& t : inputs) any = any || requires_grad(t);
  if (!any) return output;

  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& input : inputs) {
    Edge edge;
    if (requires_grad(input)) {
      Tensor handle = input;  // shares the impl, so the meta pointer is the input's
      const std::shared_ptr<AutogradMeta>& meta = handle.autograd_meta_ptr();
      if (meta->grad_fn) {
        edge.node = meta->grad_fn;
      } else {
        edge.leaf = meta;
      }
      edge.shape = input.shape();
    }
    edges.push_back(std::move(edge));
  }
  AutogradMeta& out_meta = *output.autograd_meta_ptr();
  BF_CHECK(out_meta.grad_fn == nullptr && !out_meta.requires_grad, name,
           ": output already has autograd history (ops must return fresh tensors)");
  out_meta.requires_grad = true;
  out_meta.grad_fn = std::make_shared<Node>(name, std::move(edges), std::move(backward));
  return output;
}

}  // namespace bertforge::autograd
