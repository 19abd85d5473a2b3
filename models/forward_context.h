// What a BERT forward pass carries besides activations: the key material of its dropout masks, and an
// optional probe that observes intermediate tensors (for the outlier metrics of evaluation).
//
// Dropout masks come from Philox streams keyed by (seed, step, rank, site, micro_step) (DESIGN.md), so a step
// is reproducible, data-parallel ranks and micro-batches draw different masks, and every dropout site of the
// model draws its own mask. Sites are numbered (layer + 1) * kDropoutSitesPerLayer + site, with layer -1 for
// the embeddings.
//
// Probe points, named "layer.<i>.<point>" for encoder layer i (0-based):
//   attention_probs           (B, H, T, T) attention probabilities after the softmax variant, before dropout
//                             (the gated variant's gates are applied later, to the context)
//   ffn_output                (B, T, C) FFN output, output.dense's result, before dropout
//   ffn_output_plus_residual  (B, T, C) the input of output.LayerNorm: dropout(ffn_output) + residual
//   layer_output              (B, T, C) output.LayerNorm's result, the layer's output
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/tensor.h"
#include "ops/dropout.h"

namespace bertforge {

// The dropout sites of the embeddings (layer -1) and of each encoder layer.
enum class DropoutSite : uint64_t {
  kEmbeddings = 0,       // after the embeddings' LayerNorm
  kAttentionProbs = 1,   // attention probabilities
  kHeads = 2,            // head dropout of the per-head context
  kAttentionOutput = 3,  // after attention.output.dense
  kFfnOutput = 4,        // after output.dense
};
inline constexpr uint64_t kDropoutSitesPerLayer = 8;

// The per-step part of every dropout key: the run's seed, the optimizer step, the data-parallel rank and the
// micro-batch under gradient accumulation.
struct DropoutContext {
  uint64_t seed = 0;
  uint64_t step = 0;
  uint64_t rank = 0;
  uint64_t micro_step = 0;

  // The key of `site` in encoder layer `layer` (-1: the embeddings).
  DropoutKey key(int64_t layer, DropoutSite site) const {
    const uint64_t id = static_cast<uint64_t>(layer + 1) * kDropoutSitesPerLayer + static_cast<uint64_t>(site);
    return dropout_key(seed, step, rank, id, micro_step);
  }
};

// Called with (name, tensor) at each probe point; it must not modify the tensor. Tensors are the live
// activations (they may carry autograd history): copy or reduce them, don't keep them.
using ProbeFn = std::function<void(const std::string& name, const Tensor& value)>;

inline constexpr const char* kProbeAttentionProbs = "attention_probs";
inline constexpr const char* kProbeFfnOutput = "ffn_output";
inline constexpr const char* kProbeFfnOutputPlusResidual = "ffn_output_plus_residual";
inline constexpr const char* kProbeLayerOutput = "layer_output";

// "layer.<layer>.<point>".
inline std::string probe_name(int64_t layer, const char* point) { return absl::StrCat("layer.", layer, ".", point); }

struct ForwardContext {
  DropoutContext dropout;
  const ProbeFn* probe = nullptr;  // not owned; nullptr or an empty function: no probing

  void observe(int64_t layer, const char* point, const Tensor& value) const {
    if (probe != nullptr && *probe) (*probe)(probe_name(layer, point), value);
  }
};

}  // namespace bertforge
