// Graph nodes of reverse-mode autodiff, and `record`, the one call an op
// makes to become differentiable.
//
// An op computes its output, then calls
//     return record("gelu", y, {x}, [x = x.detach()](const Tensor& dy) { ... return {dx}; });
// The lambda is the op's backward: given dL/d(output) it returns dL/d(input)
// for each input, in order (an undefined Tensor where an input needs no
// gradient). Capture only what backward needs, and capture tensors detached:
// a node that held its own output with history would form a reference cycle.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace bertforge::autograd {

class Node;

// Where the gradient of one op input goes: into the node that produced it,
// or (for a leaf that requires grad) into its .grad; neither when the input
// needs no gradient.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<AutogradMeta> leaf;
  Shape shape;  // the input's shape, to check the gradient the op returns

  bool needs_grad() const { return node != nullptr || leaf != nullptr; }
};

class Node {
 public:
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

  Node(std::string name, std::vector<Edge> next_edges, BackwardFn backward)
      : name_(std::move(name)), next_edges_(std::move(next_edges)), backward_(std::move(backward)) {}

  const std::string& name() const { return name_; }
  const std::vector<Edge>& next_edges() const { return next_edges_; }
  // Runs the op's backward; checks the number and shapes of returned grads.
  std::vector<Tensor> apply(const Tensor& grad_output);
  // Frees what backward captured and the edges: the graph is used once.
  void release();
  bool released() const { return !backward_; }

 private:
  std::string name_;
  std::vector<Edge> next_edges_;
  BackwardFn backward_;
};

// True when `t` takes part in a graph (a leaf that requires grad, or an op output of one).
bool requires_grad(const Tensor& t);

// Attaches a node computing `backward` to `output` when grad mode is on and
// any input requires grad; returns `output` either way.
Tensor record(const char* name, Tensor output, const std::vector<Tensor>& inputs, Node::BackwardFn backward);

}  // namespace bertforge::autograd
