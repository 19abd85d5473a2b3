// Linear, LayerNorm and Embedding modules: parameters registered here, the math in ops/ (see layers.h).
#include "models/layers.h"

#include "ops/embedding.h"
#include "ops/layernorm.h"
#include "ops/matmul.h"

namespace bertforge {

Linear::Linear(int64_t in_features, int64_t out_features, float init_std)
    : Linear(in_features, out_features, ParamInit::normal(init_std), ParamInit::zeros()) {}

Linear::Linear(int64_t in_features, int64_t out_features, ParamInit weight_init, ParamInit bias_init) {
  weight = register_parameter("weight", {out_features, in_features}, weight_init);
  bias = register_parameter("bias", {out_features}, bias_init);
}

Tensor Linear::forward(const Tensor& x) const {
  if (override_) return override_(x);
  return linear(x, weight, bias);
}

LayerNorm::LayerNorm(int64_t dim, float eps) : eps(eps) {
  weight = register_parameter("weight", {dim}, ParamInit::ones());
  bias = register_parameter("bias", {dim}, ParamInit::zeros());
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }

Embedding::Embedding(int64_t num, int64_t dim, float init_std, int64_t padding_idx) {
  weight = register_parameter("weight", {num, dim}, ParamInit::normal(init_std, padding_idx));
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(ids, weight); }

}  // namespace bertforge
