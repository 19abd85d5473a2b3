// The building-block modules of BERT, with PyTorch's parameter names ("weight", "bias") and Hugging Face's
// initialisation (BertPreTrainedModel._init_weights): Linear and Embedding weights normal(0, initializer_range),
// biases zero, LayerNorm weight one and bias zero.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include "core/tensor.h"
#include "models/module.h"

namespace bertforge {

// y = x W^T + b: x (..., in) -> (..., out); weight (out, in), bias (out).
//
// Forward override: another layer may take over the computation (quant/ executes a Linear with int8 codes this
// way, without models/ knowing about it). While an override is set, forward(x) returns override(x), which must map
// x (..., in) to (..., out); weight and bias stay registered (checkpoints, parameter counts) but forward does not
// read them. An empty function restores the floating-point path; with none set, forward costs one branch more.
class Linear : public Module {
 public:
  using ForwardOverride = std::function<Tensor(const Tensor& x)>;

  // Weight normal(0, init_std), bias zero: the BERT init.
  Linear(int64_t in_features, int64_t out_features, float init_std);
  // Any other init (e.g. models/bert_attention.h's PyTorch-style projections).
  Linear(int64_t in_features, int64_t out_features, ParamInit weight_init, ParamInit bias_init);
  Tensor forward(const Tensor& x) const;

  void set_forward_override(ForwardOverride forward_override) { override_ = std::move(forward_override); }
  bool has_forward_override() const { return static_cast<bool>(override_); }

  Tensor weight, bias;

 private:
  ForwardOverride override_;
};

// LayerNorm over the last dim: x (..., dim) -> (..., dim); weight, bias (dim).
class LayerNorm : public Module {
 public:
  LayerNorm(int64_t dim, float eps);
  Tensor forward(const Tensor& x) const;

  Tensor weight, bias;
  float eps;
};

// Row lookup: ids int64 (...) -> (..., dim); weight (num, dim). The row padding_idx (if >= 0) starts at zero,
// as with torch.nn.Embedding's padding_idx. Unlike torch, the lookup does not block that row's gradient: the
// two agree whenever [PAD] tokens sit only at positions masked out of attention and loss (as in MLM batches),
// since those positions receive exactly zero gradient.
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, float init_std, int64_t padding_idx = -1);
  Tensor forward(const Tensor& ids) const;

  Tensor weight;
};

}  // namespace bertforge
