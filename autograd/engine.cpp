// Reverse-mode backward: topological order by dependency counting (Kahn).
//
// 1. Walk the graph from the root's node and count, for every node, how many
//    edges point at it (its consumers).
// 2. Start at the root; a node runs once all its consumers have handed it
//    their gradient contributions, which are summed on arrival.
// 3. Gradients reaching a leaf are added into leaf.grad, which the leaf owns.
//    Edges into each leaf are counted in step 1 too, so that the caller can be
//    told when the last one has delivered (on_leaf_ready).
#include "autograd/engine.h"

#include <unordered_map>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"

namespace bertforge::autograd {
namespace {

void accumulate_cpu(Tensor& acc, const Tensor& grad) {
  BF_CHECK(acc.dtype() == DType::kF32 && grad.dtype() == DType::kF32,
           "gradient accumulation on the CPU supports f32, got ", dtype_name(acc.dtype()));
  float* a = acc.data<float>();
  const float* g = grad.data<float>();
  const int64_t n = acc.numel();
#pragma omp parallel for simd if (parallel : n > 65536)
  for (int64_t i = 0; i < n; ++i) a[i] += g[i];
}

AccumulateFn& accumulate_slot(DeviceType type) {
  static AccumulateFn slots[kNumDeviceTypes] = {&accumulate_cpu, nullptr};
  return slots[static_cast<int>(type)];
}

// acc += grad, writing into acc's own buffer. `acc` must be owned (not aliased).
void accumulate(Tensor& acc, const Tensor& grad) {
  BF_CHECK(acc.device() == grad.device(), "gradient on ", grad.device().str(), " for a tensor on ",
           acc.device().str());
  AccumulateFn fn = accumulate_slot(acc.device().type);
  BF_CHECK(fn != nullptr, "no gradient accumulation registered for ", acc.device().str());
  fn(acc, grad.contiguous());
}

// A fresh contiguous copy the caller may modify in place.
Tensor owned_copy(const Tensor& t) { return t.detach().clone(); }

}  // namespace

void register_accumulate(DeviceType type, AccumulateFn fn) { accumulate_slot(type) = fn; }

void backward(const Tensor& root, const Tensor& grad_output, bool retain_graph,
              const LeafGradientReadyFn& on_leaf_ready) {
  BF_CHECK(requires_grad(root), "backward() on a tensor that does not require grad");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    BF_CHECK(root.numel() == 1, "backward() without grad_output needs a one-element root, got ",
             root.shape_str());
    seed = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  BF_CHECK(seed.shape() == root.shape(), "backward: grad_output ", seed.shape_str(), " for root ",
           root.shape_str());
  NoGradGuard no_grad;  // backward computations are not themselves recorded

  AutogradMeta* root_meta = root.autograd_meta();
  if (!root_meta->grad_fn) {  // the root is a leaf
    if (root_meta->grad.defined()) {
      accumulate(root_meta->grad, seed);
    } else {
      root_meta->grad = owned_copy(seed);
    }
    if (on_leaf_ready) on_leaf_ready(*root_meta);
    return;
  }

  // 1. Count consumers of every node reachable from the root, and the edges into every leaf.
  std::unordered_map<Node*, int> consumers;
  std::unordered_map<const AutogradMeta*, int> leaf_edges;
  std::vector<Node*> stack = {root_meta->grad_fn.get()};
  consumers[stack.back()] = 0;
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const Edge& edge : node->next_edges()) {
      if (edge.leaf) ++leaf_edges[edge.leaf.get()];
      if (!edge.node) continue;
      auto [it, inserted] = consumers.try_emplace(edge.node.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(edge.node.get());
    }
  }

  // 2. Run nodes whose consumers have all contributed; sum contributions.
  std::unordered_map<Node*, Tensor> pending;  // summed dL/d(node output)
  std::shared_ptr<Node> root_node = root_meta->grad_fn;  // keeps the graph alive while we run
  pending[root_node.get()] = seed;
  std::vector<std::shared_ptr<Node>> ready = {root_node};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    Tensor grad_out = std::move(pending[node.get()]);
    pending.erase(node.get());
    // A node that received no gradient at all passes none on.
    std::vector<Tensor> grads =
        grad_out.defined() ? node->apply(grad_out) : std::vector<Tensor>(node->next_edges().size());
    const std::vector<Edge> edges = node->next_edges();  // copy: release() clears them
    if (!retain_graph) node->release();

    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& edge = edges[i];
      const Tensor& g = grads[i];
      if (edge.leaf && g.defined()) {
        Tensor& leaf_grad = edge.leaf->grad;
        if (leaf_grad.defined()) {
          accumulate(leaf_grad, g);
        } else {
          leaf_grad = owned_copy(g);
        }
      }
      if (edge.leaf && --leaf_edges[edge.leaf.get()] == 0 && on_leaf_ready) on_leaf_ready(*edge.leaf);
      if (!edge.node) continue;
      if (g.defined()) {
        auto it = pending.find(edge.node.get());
        if (it == pending.end() || !it->second.defined()) {
          pending[edge.node.get()] = g;  // the first contribution may alias; sums are fresh
        } else {
          Tensor sum = owned_copy(it->second);
          accumulate(sum, g);
          it->second = sum;
        }
      }
      if (--consumers[edge.node.get()] == 0) ready.push_back(edge.node);
    }
  }
}

}  // namespace bertforge::autograd
