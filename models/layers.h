// The building-block modules of BERT, with PyTorch's parameter names ("weight", "bias") and Hugging Face's
// initialisation (BertPreTrainedModel._init_weights): Linear and Embedding weights normal(0, initializer_range),
// biases zero, LayerNorm weight one and bias zero.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "models/module.h"

namespace bertforge {

// y = x W^T + b: x (..., in) -> (..., out); weight (out, in), bias (out).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, float init_std);
  Tensor forward(const Tensor& x) const;

  Tensor weight, bias;
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
