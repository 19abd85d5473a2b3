// What a BERT forward pass carries besides activations: the key material of its dropout masks, the optional
// callbacks that see (and may replace) intermediate activations at named tap points, and an optional clipped
// softmax alpha that replaces the config's for this pass.
//
// Dropout masks come from Philox streams keyed by (seed, step, rank, site, micro_step) (docs/design.md), so a step
// is reproducible, data-parallel ranks and micro-batches draw different masks, and every dropout site of the
// model draws its own mask. Sites are numbered (layer + 1) * kDropoutSitesPerLayer + site, with layer -1 for
// the embeddings.
//
// Tap points. The model passes each activation below through ForwardContext::tap and continues with what it
// returns. They are the activations that Quantizable Transformers' PTQ setup quantizes (the MLM head has none:
// it stays in floating point). Named "embeddings.<point>" for the embeddings and "layer.<i>.<point>" for encoder
// layer i (0-based), in forward order; C = hidden size, I = intermediate size, H heads, d = C / H:
//   embeddings.sum                  (B,T,C) word + token type + position embeddings, the LayerNorm input
//   embeddings.layer_norm           (B,T,C) the embeddings' LayerNorm output, before dropout
//   query, key, value               (B,T,C) the projections, before the split into heads
//   attention_scores                (B,H,T,T) Q K^T / sqrt(d), before the padding mask and the softmax
//   attention_probs                 (B,H,T,T) after the softmax variant, before dropout (the gated variant's
//                                   gates are applied later, to the context)            [probe]
//   context                         (B,T,C) P V with heads merged (after gates and head dropout): the input of
//                                   attention.output.dense
//   attention_output                (B,T,C) attention.output.dense's result, before dropout
//   attention_output_plus_residual  (B,T,C) dropout(attention_output) + x, the input of attention.output.LayerNorm
//   attention_layer_norm            (B,T,C) attention.output.LayerNorm's result, the FFN input
//   intermediate                    (B,T,I) intermediate.dense's result, the GELU input
//   gelu                            (B,T,I) the GELU output, the input of output.dense
//   ffn_output                      (B,T,C) output.dense's result, before dropout                 [probe]
//   ffn_output_plus_residual        (B,T,C) dropout(ffn_output) + attention_layer_norm, the input of
//                                   output.LayerNorm                                              [probe]
//   layer_output                    (B,T,C) output.LayerNorm's result, the layer's output          [probe]
//
// Two callbacks, both optional:
//   ActivationHook  sees every tap point and returns the tensor the model continues with: its input to only
//                   observe, or a replacement of the same shape (fake quantization). A replacement is made
//                   outside autograd's view unless the hook builds it from differentiable ops, so replacing is
//                   meant for no-grad evaluation.
//   ProbeFn         observes the [probe] points only (the outlier metrics' tensors), by site, after the hook:
//                   it sees what the model continues with.
// With neither set, tap() hands its argument straight back: no copy, no name is built.
//
// Clip alpha override: a training schedule that varies the clipped softmax alpha (the trainer's alpha warm-up,
// train/clip_alpha_warmup.h) sets ForwardContext::clip_alpha; the clipped-softmax attention then uses
// gamma = -clip_alpha / T instead of the config's alpha or gamma (BertConfig::clip_gamma_for). The other attention
// variants ignore it. The model's config keeps the target alpha.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/check.h"
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

// ---- Tap points --------------------------------------------------------------------------------------------

// The tap points, in forward order (shapes and meaning in the file comment). The first two belong to the
// embeddings (layer -1), the others to every encoder layer.
enum class TapPoint : int {
  kEmbeddingSum,
  kEmbeddingLayerNorm,
  kQuery,
  kKey,
  kValue,
  kAttentionScores,
  kAttentionProbs,
  kContext,
  kAttentionOutput,
  kAttentionOutputPlusResidual,
  kAttentionLayerNorm,
  kIntermediate,
  kGelu,
  kFfnOutput,
  kFfnOutputPlusResidual,
  kLayerOutput,
};
inline constexpr int kTapPointCount = 16;
inline constexpr int kEmbeddingTapPoints = 2;  // kEmbeddingSum, kEmbeddingLayerNorm
inline constexpr int kLayerTapPoints = kTapPointCount - kEmbeddingTapPoints;  // kQuery .. kLayerOutput
inline constexpr int64_t kEmbeddingsLayer = -1;

// One row per TapPoint, in enum order.
struct TapPointInfo {
  TapPoint point;
  const char* name;  // the <point> part of the full name
  bool probe;        // also seen by a ProbeFn
};
inline constexpr TapPointInfo kTapPoints[kTapPointCount] = {
    {TapPoint::kEmbeddingSum, "sum", false},
    {TapPoint::kEmbeddingLayerNorm, "layer_norm", false},
    {TapPoint::kQuery, "query", false},
    {TapPoint::kKey, "key", false},
    {TapPoint::kValue, "value", false},
    {TapPoint::kAttentionScores, "attention_scores", false},
    {TapPoint::kAttentionProbs, "attention_probs", true},
    {TapPoint::kContext, "context", false},
    {TapPoint::kAttentionOutput, "attention_output", false},
    {TapPoint::kAttentionOutputPlusResidual, "attention_output_plus_residual", false},
    {TapPoint::kAttentionLayerNorm, "attention_layer_norm", false},
    {TapPoint::kIntermediate, "intermediate", false},
    {TapPoint::kGelu, "gelu", false},
    {TapPoint::kFfnOutput, "ffn_output", true},
    {TapPoint::kFfnOutputPlusResidual, "ffn_output_plus_residual", true},
    {TapPoint::kLayerOutput, "layer_output", true},
};

inline const TapPointInfo& tap_point_info(TapPoint point) { return kTapPoints[static_cast<int>(point)]; }
inline const char* tap_point_name(TapPoint point) { return tap_point_info(point).name; }

// Where an activation is tapped: the encoder layer (kEmbeddingsLayer for the embeddings) and the point.
struct TapSite {
  int64_t layer = kEmbeddingsLayer;
  TapPoint point = TapPoint::kEmbeddingSum;

  // "embeddings.<point>" or "layer.<layer>.<point>".
  std::string name() const {
    return layer == kEmbeddingsLayer ? absl::StrCat("embeddings.", tap_point_name(point))
                                     : absl::StrCat("layer.", layer, ".", tap_point_name(point));
  }
  // A dense index over every site of a model: 0..1 for the embeddings, then kLayerTapPoints per layer.
  int64_t index() const {
    return layer == kEmbeddingsLayer ? static_cast<int64_t>(point)
                                     : layer * kLayerTapPoints + static_cast<int64_t>(point);
  }
};

// Every tap site of a model with `num_layers` encoder layers, in forward order (site.index() == position).
inline std::vector<TapSite> all_tap_sites(int64_t num_layers) {
  std::vector<TapSite> sites;
  for (int p = 0; p < kEmbeddingTapPoints; ++p) sites.push_back({kEmbeddingsLayer, static_cast<TapPoint>(p)});
  for (int64_t l = 0; l < num_layers; ++l) {
    for (int p = kEmbeddingTapPoints; p < kTapPointCount; ++p) sites.push_back({l, static_cast<TapPoint>(p)});
  }
  return sites;
}

// Sees (and may replace) the activation `value` at `site`; returns the tensor the model continues with, of
// value's shape. `value` is the live activation (it may carry autograd history): don't modify it in place.
using ActivationHook = std::function<Tensor(const TapSite& site, const Tensor& value)>;

// ---- Probes (observe only) ---------------------------------------------------------------------------------

// The probe points are the tap points with TapPointInfo::probe, the outlier metrics' tensors
// (train/outlier_metrics.h): attention_probs, ffn_output, ffn_output_plus_residual and layer_output of every
// encoder layer; the embeddings have none.
//
// Called with (site, tensor) at each probe point, after the hook: the tensor is the hook's replacement, if any. It
// must not modify the tensor. Tensors are the live activations (they may carry autograd history): copy or reduce
// them, don't keep them.
using ProbeFn = std::function<void(const TapSite& site, const Tensor& value)>;

// ---- The context -------------------------------------------------------------------------------------------

struct ForwardContext {
  DropoutContext dropout;
  const ActivationHook* hook = nullptr;  // not owned; nullptr or an empty function: no hook
  const ProbeFn* probe = nullptr;        // not owned; nullptr or an empty function: no probing
  std::optional<float> clip_alpha;       // replaces BertConfig::clip_alpha in this pass; nullopt: the config's

  // The activation the model continues with at `point` of `layer`: `value` itself, or the hook's replacement;
  // a probe point is then shown to the probe.
  Tensor tap(int64_t layer, TapPoint point, Tensor value) const {
    const bool hooked = hook != nullptr && *hook;
    const bool probed = probe != nullptr && *probe && tap_point_info(point).probe;
    if (!hooked && !probed) return value;
    const TapSite site{layer, point};
    if (hooked) {
      Tensor replaced = (*hook)(site, value);
      BF_CHECK(replaced.defined() && replaced.shape() == value.shape(), "the activation hook at ", site.name(),
               " must return a tensor of shape ", value.shape_str(), ", got ",
               replaced.defined() ? replaced.shape_str() : std::string("an undefined tensor"));
      value = std::move(replaced);
    }
    if (probed) (*probe)(site, value);
    return value;
  }
};

}  // namespace bertforge
